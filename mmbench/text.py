"""Names as text that reaches a reader: a terminal, Markdown, CSV, HTML or a file name.

A control character (Unicode category ``Cc``: ESC, BEL, carriage return, the C1 range, ...)
in a label could clear a terminal, set its title or forge a line; :func:`controls` finds them so
suites and datasets can refuse such names in one line, and :func:`escaped` writes them as
visible escapes (``\\x1b``) wherever text from elsewhere (plugins, data) is shown.
"""

from __future__ import annotations

import re
import unicodedata

#: control characters a free-text field (a description, a path) may hold
LAYOUT = frozenset("\n\t")


def controls(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The control characters in ``text`` (each once, in order), except those ``allowed``."""
    found = [c for c in text if c not in allowed and unicodedata.category(c) == "Cc"]
    return list(dict.fromkeys(found))


def escaped(text: str, allowed: frozenset[str] = frozenset()) -> str:
    """``text`` with every control character but the ``allowed`` ones written as an escape."""
    if not controls(text, allowed):
        return text
    return "".join(c if c in allowed or unicodedata.category(c) != "Cc" else _escape(c) for c in text)


def _escape(char: str) -> str:
    if char in "\n\t\r":
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def refusal(where: str, text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """One line saying that ``text`` (at ``where``) holds control characters, or None."""
    found = controls(text, allowed)
    if not found:
        return None
    shown = ", ".join(_escape(c) for c in found[:3])
    return (f"{where} '{escaped(text)[:60]}' holds control characters ({shown}); they could rewrite a "
            "terminal or a table: remove them")


def file_slug(name: str) -> str:
    """``name`` as part of a file name: letters, digits and ``_ . + -`` kept, any other run of
    characters one ``_`` (two names with the same slug are refused where they are declared)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def slug_clash(names: list[str]) -> tuple[str, str] | None:
    """Two distinct ``names`` that share a file slug (e.g. ``d 1`` and ``d_1``), or None."""
    seen: dict[str, str] = {}
    for name in dict.fromkeys(names):
        other = seen.setdefault(file_slug(name), name)
        if other != name:
            return other, name
    return None
