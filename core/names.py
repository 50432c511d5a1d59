"""Names as the house shows and stores them: any file name or path as printable text.

A file name on Linux is bytes: one that is not valid UTF-8 reaches Python with surrogate escapes
(U+DC80-U+DCFF), which no UTF-8 file, terminal or picture can hold, and a name may hold terminal
control characters (an escape sequence, a bell) or invisible ones that turn text around (U+202E).
`printable` escapes each of them, so a name is shown, not dropped or obeyed: ``caf\\xe9.mp4`` for
the byte 0xE9, ``\\x1b[31m`` for an escape sequence, ``\\u202e`` for a right-to-left override.
Every other character, accented letters and other scripts included, stays as it is.
"""

from __future__ import annotations

import os
import unicodedata

# what is escaped: control characters, format characters (bidirectional overrides, zero-width
# ones), surrogates (a byte of a name that is not UTF-8), line and paragraph separators
ESCAPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(name: str | bytes | os.PathLike[str] | os.PathLike[bytes], ascii_only: bool = False) -> str:
    """`name` (a path, str or bytes) as printable text: control and format characters and the
    bytes of a name that are not UTF-8 written as escapes (``\\x1b``, ``\\u202e``, ``\\xe9``).
    Idempotent: printable text comes back unchanged. `ascii_only`: every character beyond ASCII
    is escaped too (for OpenCV's Hershey fonts, which draw nothing else)."""
    text = os.fsdecode(name)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escaped(c, ascii_only) for c in text)


def _escaped(char: str, ascii_only: bool) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte of the name as it is on disk
        return f"\\x{code - 0xDC00:02x}"
    if char in SHORT:
        return SHORT[char]
    if unicodedata.category(char) in ESCAPED or (ascii_only and code > 0x7E):
        if code <= 0xFF:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char
