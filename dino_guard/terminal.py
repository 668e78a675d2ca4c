"""Text from setup files and file names, made safe to print.

A value or a file name can hold ANSI escape sequences (retitle the terminal,
clear the screen, fake "All checks passed"), carriage returns, bidi
overrides, or lone surrogates (which make printing itself fail). Every
user-controlled string goes through `printable` before it reaches a
terminal or a CI log. Stdlib only.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, lone surrogates, line/paragraph separators, bidi embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str) -> str:
    """`text` with every control character written as a Python-style escape (\\x1b, \\n, \\udcff)."""
    return _UNSAFE.sub(_escape, text)
