"""Where a run may write, checked before any work: the results folder (a safe name under the
results root unless ``--out`` says otherwise), the checkpoint cache, the ``--summary`` file; and
one run per results folder at a time (a lock the kernel releases when its process dies)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from mmbench.errors import MMBenchError

LOCK = ".mmbench.lock"


def safe_name(name: str) -> str:
    """A suite name as one folder name: characters other than letters, digits, ``_``, ``.`` and
    ``-`` become ``_``, leading dots are dropped; no separator, ``..`` or absolute path can
    survive. Refused when nothing usable is left."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")[:100]
    if not slug.strip("_"):
        raise MMBenchError(f"suite name {name[:40]!r} cannot be a results folder name; use letters, digits, "
                           "'_', '.' and '-' (or give --out DIR)")
    return slug


def results_folder(root: Path, name: str) -> Path:
    """``root/<safe name>``, checked to lie inside ``root``."""
    folder = root / safe_name(name)
    if root.resolve() not in (folder.resolve(), *folder.resolve().parents):
        raise MMBenchError(f"suite name {name[:40]!r} would write outside {root}; rename the suite")
    return folder


def writable_folder(path: Path, what: str) -> Path:
    """Create ``path`` if needed and check a file can be written in it; one line otherwise."""
    if path.exists() and not path.is_dir():
        raise MMBenchError(f"{what} {path} is a file, not a folder; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mmbench-write-check-"):
            pass
    except OSError as exc:
        raise MMBenchError(f"{what} {path} is not writable ({_reason(exc)}); choose another folder or fix "
                           "its permissions") from None
    return path


def writable_file(path: Path, what: str) -> Path:
    """A file that text can be appended to (created if missing); one line otherwise."""
    if path.is_dir():
        raise MMBenchError(f"{what} {path} is a folder; give a file")
    try:  # non-blocking: a pipe nobody reads would otherwise hang the run here (ENXIO instead)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644))
    except OSError as exc:
        raise MMBenchError(f"{what} {path} cannot be written ({_reason(exc)}); give a writable file") from None
    return path


def _reason(exc: OSError) -> str:
    return {errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
            errno.ENOTDIR: "a parent is a file", errno.ENOSPC: "disk full",
            errno.ENXIO: "a pipe that nobody reads"}.get(exc.errno or 0, exc.strerror or str(exc))


def refuse_links(folder: Path) -> None:
    """A results folder is something people download and share: a symbolic link planted in it
    (as the lock, the store, an export, a board or under ``plots/``) would make mmbench write
    through it, outside the folder. One line naming the first link; nothing is written."""
    if not folder.is_dir():
        return
    entries = sorted(folder.iterdir())
    plots = folder / "plots"
    if plots.is_dir() and not plots.is_symlink():
        entries += sorted(plots.iterdir())
    for entry in entries:
        if entry.is_symlink():
            raise MMBenchError(f"{entry} is a symbolic link: mmbench never writes through links in a results "
                               "folder (it could point outside it); remove the link, or use another folder")


def write_atomic(path: Path, write: Any) -> Path:
    """Call ``write(tmp_path)`` on a fresh file beside ``path``, then rename it over ``path``: a
    reader never sees half a file, and a link at ``path`` is replaced, never followed."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """``path.write_text(text)`` through :func:`write_atomic`."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class FolderLock:
    """An exclusive lock on a results folder (``flock`` on ``.mmbench.lock``): a second run on
    the same folder is refused, naming the process that holds it, or waits (``wait``). The
    kernel drops the lock when its process ends, so a run killed with ``kill -9`` leaves none."""

    def __init__(self, folder: Path, wait: bool = False, poll: float = 0.5) -> None:
        self.path, self.wait, self.poll = folder / LOCK, wait, poll
        self.handle: IO[str] | None = None

    def __enter__(self) -> FolderLock:
        try:  # never through a link planted as the lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise MMBenchError(f"{self.path} is a symbolic link: mmbench never writes through links in a "
                                   "results folder; remove the link, or use another folder") from None
            raise
        self.handle = os.fdopen(fd, "a+", encoding="utf-8")
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self.wait:
                    holder = self.holder()
                    self.handle.close()
                    raise MMBenchError(f"another mmbench run ({holder}) is writing {self.path.parent}; wait "
                                       "for it to finish, or rerun with --wait") from None
                time.sleep(self.poll)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        self.handle.flush()
        return self

    def holder(self) -> str:
        """Who holds the lock, as recorded in the lock file."""
        try:
            info: dict[str, Any] = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "process unknown"
        since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
        return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {since}"

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
