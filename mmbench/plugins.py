"""Third-party plugins from Python entry points, found and loaded so that none can take the
CLI down: distributions are read one by one, once per process (an unreadable one is one
warning); each plugin's import is guarded against any exception, ``SystemExit`` or a
``KeyboardInterrupt`` it raises itself (a real Ctrl-C still stops the run), and bounded in time
(``$MMBENCH_PLUGIN_TIMEOUT``, SIGALRM in the main thread). ``$MMBENCH_NO_PLUGINS`` (or the CLI's
``--no-plugins``) turns loading off. :mod:`mmbench.registry` calls :func:`entry_points` and
:func:`load_plugin`.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mmbench.errors import MMBenchError, first_line

log = logging.getLogger(__name__)

#: Set to ``1``/``true`` to stop mmbench from loading third-party plugins from entry points.
NO_PLUGINS_ENV = "MMBENCH_NO_PLUGINS"

#: guards the one scan of the installed distributions
_SCANNING = threading.RLock()

def plugins_enabled() -> bool:
    return os.environ.get(NO_PLUGINS_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


def plugin_timeout() -> float | None:
    """Seconds one plugin's import may take (``$MMBENCH_PLUGIN_TIMEOUT``, default 20; ``0``: no
    limit)."""
    text = os.environ.get(PLUGIN_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_PLUGIN_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise MMBenchError(f"{PLUGIN_TIMEOUT_ENV} must be a number of seconds >= 0 (0: no limit), got {text!r}")
    return seconds or None


# -- plugin discovery: once per process, one distribution at a time --------------------------------

#: every ``mmbench.*`` entry point of the installed distributions by group, read once per process
_ENTRY_POINTS: dict[str, list[Any]] | None = None


#: torch's switch for loading device backends from entry points when it is imported
TORCH_AUTOLOAD_ENV = "TORCH_DEVICE_BACKEND_AUTOLOAD"


def scan_plugins() -> None:
    """Read every distribution's entry points now (once per process), before torch is imported:
    the CLI calls it first, so that an unreadable distribution is reported and kept away from
    torch's own entry-point scan (see :func:`_scan_distributions`)."""
    entry_points("")


def entry_points(group: str) -> list[Any]:
    """The ``group`` entry points of the installed distributions (read once per process)."""
    global _ENTRY_POINTS
    with _SCANNING:
        if _ENTRY_POINTS is None:
            _ENTRY_POINTS = _scan_distributions()
        return list(_ENTRY_POINTS.get(group, ()))


def _scan_distributions() -> dict[str, list[Any]]:
    """The ``mmbench.*`` entry points of every distribution, deduplicated by normalized name as
    :func:`importlib.metadata.entry_points` does (the first on the path wins). A distribution
    whose entry points cannot be read (a non-UTF-8 or malformed ``entry_points.txt``) is one
    warning line and the others still count; since ``import torch`` reads every distribution's
    entry points to autoload device backends and would fail on the same file, that autoload is
    turned off when torch is not imported yet (unless ``$TORCH_DEVICE_BACKEND_AUTOLOAD`` is set)."""
    from importlib import metadata

    found: dict[str, list[Any]] = {}
    seen: set[str] = set()
    for dist in metadata.distributions():
        key = _normalized_name(dist)
        if key in seen:
            continue
        seen.add(key)
        try:
            points = [ep for ep in dist.entry_points if ep.group.startswith("mmbench.")]
        except Exception as exc:  # a non-UTF-8 or malformed entry_points.txt, an unreadable file
            log.warning("skipping the plugins of distribution %s: its entry points cannot be read "
                        "(%s: %s)%s", _describe_dist(dist), type(exc).__name__, first_line(exc),
                        _spare_torch())
            continue
        for ep in points:
            found.setdefault(ep.group, []).append(ep)
    return found


def _spare_torch() -> str:
    """Turn off torch's backend autoload, which would fail on an unreadable distribution."""
    if "torch" in sys.modules or TORCH_AUTOLOAD_ENV in os.environ:
        return ""
    os.environ[TORCH_AUTOLOAD_ENV] = "0"
    return f"; {TORCH_AUTOLOAD_ENV}=0 for this run (torch would fail reading it)"


def _normalized_name(dist: Any) -> str:
    """importlib.metadata's key for a distribution (from its folder name, without parsing its
    metadata), else its normalized ``Name``, else where it lies."""
    try:
        name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"]
    except Exception:
        name = None
    return re.sub(r"[-_.]+", "_", name).lower() if name else f"at {_dist_path(dist)}"


def _describe_dist(dist: Any) -> str:
    try:
        name = dist.metadata["Name"]
    except Exception:
        name = None
    where = _dist_path(dist)
    return f"'{name}' ({where})" if name else str(where)


def _dist_path(dist: Any) -> str:
    return str(getattr(dist, "_path", None) or dist)


# -- loading one plugin: any failure, a hang or a stray KeyboardInterrupt is one warning -----------

#: how long one plugin's import may take, in seconds, unless ``$MMBENCH_PLUGIN_TIMEOUT`` says
DEFAULT_PLUGIN_TIMEOUT = 20.0
PLUGIN_TIMEOUT_ENV = "MMBENCH_PLUGIN_TIMEOUT"

#: returned by :func:`load_plugin` for a plugin that was skipped
SKIPPED = object()

#: modules whose import ran out of time in this process: not imported (and waited for) again
_TIMED_OUT: set[str] = set()


class _PluginTimeout(BaseException):
    """Raised by the SIGALRM handler when a plugin's import runs out of time (a BaseException,
    so that a plugin's ``except Exception`` does not swallow it)."""


class _Interrupts:
    """Whether a real SIGINT (Ctrl-C) arrived while plugins were loading in the main thread, so
    that a KeyboardInterrupt a plugin raised itself is told apart from the user's."""

    def __init__(self) -> None:
        self.received = False

    def handler(self, signum: int, frame: Any) -> None:
        self.received = True
        raise KeyboardInterrupt


_INTERRUPTS = _Interrupts()

#: whether a plugin time limit is running (a plugin whose import loads plugins stays under it)
_TIMING = [False]


def load_plugin(ep: Any, kind: str, limit: float | None) -> Any:
    """``ep.load()``, guarded: any exception, ``SystemExit``, ``GeneratorExit``, a
    ``KeyboardInterrupt`` the plugin raised itself, or an import that outlasts ``limit`` seconds
    (main thread only, where SIGALRM exists) is one warning and returns :data:`SKIPPED`; only a
    real Ctrl-C goes on up."""
    module = ep.value.partition(":")[0].strip()
    if module in _TIMED_OUT:
        _warn_timeout(kind, ep, limit, again=True)
        return SKIPPED
    timed = False
    try:
        with _tracking_sigint() as from_user, _time_limit(limit) as timed:
            return ep.load()
    except _PluginTimeout:
        if not timed:  # the limit of a plugin whose import is loading this one
            raise
        _TIMED_OUT.add(module)
        _warn_timeout(kind, ep, limit)
    except KeyboardInterrupt as exc:
        if from_user():
            raise
        warn_skipped(kind, ep, exc)
    except BaseException as exc:  # SystemExit, GeneratorExit, ...: the plugin's, not ours
        warn_skipped(kind, ep, exc)
    return SKIPPED


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _tracking_sigint() -> Iterator[Callable[[], bool]]:
    """Install a SIGINT handler recording that Ctrl-C arrived (main thread, where Python handles
    SIGINT) and yield a function telling whether a KeyboardInterrupt came from the user. Off the
    main thread, or where SIGINT is ignored or left to the system, no signal raises
    KeyboardInterrupt, so any KeyboardInterrupt is the plugin's."""
    previous = signal.getsignal(signal.SIGINT) if _in_main_thread() else signal.SIG_IGN
    if previous == _INTERRUPTS.handler:  # a plugin's import is loading plugins: already tracked
        yield lambda: _INTERRUPTS.received
    elif previous in (signal.SIG_IGN, signal.SIG_DFL):
        yield lambda: False
    elif previous is None:  # a handler installed outside Python cannot be put back: Ctrl-C is real
        yield lambda: True
    else:
        _INTERRUPTS.received = False
        signal.signal(signal.SIGINT, _INTERRUPTS.handler)
        try:
            yield lambda: _INTERRUPTS.received
        finally:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[bool]:
    """Raise :class:`_PluginTimeout` in the main thread after ``seconds`` (SIGALRM and an
    ITIMER_REAL timer) and yield True; the previous handler and timer are put back. Yield False
    and set no limit without ``seconds``, off the main thread, without SIGALRM (Windows), or
    inside another plugin's limit."""
    alarm = getattr(signal, "SIGALRM", None)
    previous = signal.getsignal(alarm) if alarm is not None and _in_main_thread() else None
    if not seconds or previous is None or _TIMING[0]:
        yield False
        return
    armed = [True]

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:  # at most once, so that the clean-up below cannot be interrupted twice
            armed[0] = False
            raise _PluginTimeout

    start, outer = time.monotonic(), (0.0, 0.0)
    signal.signal(alarm, on_alarm)
    _TIMING[0] = True
    try:
        outer = signal.setitimer(signal.ITIMER_REAL, seconds)
        yield True
    finally:
        try:
            armed[0] = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(alarm, previous)
            _TIMING[0] = False
            _rearm(outer, time.monotonic() - start)


def _rearm(outer: tuple[float, float], elapsed: float) -> None:
    """Put back a timer that was running before the plugin's (its remaining time, at least 1 ms)."""
    delay, interval = outer
    if delay > 0:
        signal.setitimer(signal.ITIMER_REAL, max(delay - elapsed, 0.001), interval)


def warn_skipped(kind: str, ep: Any, exc: BaseException) -> None:
    text = first_line(exc)
    log.warning("skipping %s plugin '%s' (%s): %s%s", kind, ep.name, ep.value, type(exc).__name__,
                f": {text}" if text else "")


def _warn_timeout(kind: str, ep: Any, limit: float | None, again: bool = False) -> None:
    module = ep.value.partition(":")[0].strip()
    reason = (f"was not imported: its module {module} ran out of time before" if again
              else f"did not finish importing within {limit:g} s")
    log.warning("%s plugin '%s' (%s) %s; skipped (%s sets the limit)", kind, ep.name, ep.value, reason,
                PLUGIN_TIMEOUT_ENV)
