"""The bounds that keep a hostile or huge spec from hurting whoever reads it."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SpecBounds(BaseSettings):
    # the discovery-agent's variables since it was the only reader; other keys are not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_DISCOVERY_", env_file=".env",
                                      extra="ignore")

    max_spec_bytes: int = 5_000_000  # a larger spec is a failed discovery
    max_spec_nodes: int = 1_000_000  # JSON values in the spec, with YAML aliases expanded
    max_spec_depth: int = 200  # nesting of the spec document
    max_operations: int = 5_000
    max_ref_depth: int = 24  # nesting while inlining $refs; deeper is cut off
    max_expanded_nodes: int = 500_000  # all operations' schemas after inlining $refs
    fetch_timeout_seconds: float = 10.0  # each connect and read
    fetch_deadline_seconds: float = 30.0  # a whole spec fetch, however slowly it arrives
