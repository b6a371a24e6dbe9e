"""User-facing errors.

A :class:`MMBenchError` is a problem with what the user asked for (a bad name, a malformed suite,
missing data files). The CLI prints its one-line message and exits with status 2, without a
traceback; library callers can catch it like any exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MMBenchError(Exception):
    """A problem with the user's input, reported in one line with a hint how to fix it.

    ``exit_code``: 2 for input problems found before any work (the default), 1 for failures
    found while or after running (results that were computed are kept)."""

    exit_code = 2


class RunError(MMBenchError):
    """A failure during a run (e.g. a plugin metric raising while results are published)."""

    exit_code = 1


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, cut to ``limit`` characters."""
    text = (str(exc).splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` suffix for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
