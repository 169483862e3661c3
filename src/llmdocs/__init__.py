"""llmdocs: an LLM documentation ecosystem."""

__version__ = "0.1.0"
