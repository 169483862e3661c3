"""File names people are shown (a download's name, a listing): what is shown must be
what the name is. Bidirectional controls reorder the characters after them
("invoice\u202etxt.exe" shows as "invoiceexe.txt"), zero-width and other format
characters hide, control characters and line breaks cut the line."""

from __future__ import annotations

import unicodedata

# controls, format characters (bidi controls U+202A-E, U+2066-9, U+200E/F, U+061C;
# zero-width U+200B-D, U+2060, U+FEFF; soft hyphen), line and paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})


def hidden_characters(name: str) -> list[str]:
    """The characters of `name` that do not show as themselves, as U+XXXX."""
    return [f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in _HIDDEN]


def shown_as_is(name: str, mark: str = "_") -> str:
    """`name` with each character that does not show as itself replaced by `mark`."""
    return "".join(mark if unicodedata.category(c) in _HIDDEN else c for c in name)
