"""Reading a user's data files within bounds: only regular files are opened (a FIFO or a device
would block or never end), and an array's size is checked from what its file declares before
anything is inflated or allocated (at most :data:`MAX_ARRAY_BYTES`, ``$MMBENCH_MAX_ARRAY_BYTES``)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from mmbench.errors import MMBenchError

#: environment variable overriding :data:`MAX_ARRAY_BYTES` (a number of bytes)
MAX_BYTES_ENV = "MMBENCH_MAX_ARRAY_BYTES"
#: the most bytes one array of a data file may hold once loaded (4 GiB)
MAX_ARRAY_BYTES = 4 << 30
#: what a ``.npy`` member holds besides its array: the magic string and the header (<= 4 KiB)
NPY_HEADER_BYTES = 4096


def array_limit() -> int:
    """The byte limit per array: ``$MMBENCH_MAX_ARRAY_BYTES`` when set, else the default."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return MAX_ARRAY_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise MMBenchError(f"${MAX_BYTES_ENV} must be a positive number of bytes, got {raw[:40]!r}")
    return int(raw)


def regular_file(path: Path, what: str) -> Path:
    """``path`` when it is a regular file (or a folder); a FIFO, socket or device is refused in
    one line instead of blocking the read forever."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise MMBenchError(f"{what}: cannot read {path} ({exc.strerror or exc}); check the path") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise MMBenchError(f"{what}: {path} is not a regular file (a pipe, socket or device); give a data file")
    return path


def check_npy_size(header: tuple[tuple[int, ...], np.dtype], name: str, where: Path) -> None:
    """One line when the array a ``.npy`` header declares would exceed the byte limit."""
    shape, dtype = header
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    limit = array_limit()
    if size > limit:
        raise MMBenchError(f"arrays: '{name}' in {where} declares {size:,} bytes ({'x'.join(map(str, shape))} "
                           f"{dtype}), more than the limit of {limit:,} (${MAX_BYTES_ENV} raises it)")


def npy_header(handle: object) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header at the start of a ``.npy`` stream."""
    from numpy.lib import format as npy

    version = npy.read_magic(handle)
    reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _, dtype = reader(handle)
    return shape, dtype


def check_npz_members(file: Path, names: list[str]) -> None:
    """Check each named member of an ``.npz`` from what it declares, before inflating it: its
    uncompressed size in the zip directory and the array size in its ``.npy`` header."""
    limit = array_limit()
    with zipfile.ZipFile(file) as archive:
        for name in names:
            info = archive.getinfo(f"{name}.npy")
            if info.file_size > limit + NPY_HEADER_BYTES:
                raise MMBenchError(f"arrays: '{name}' in {file} inflates to {info.file_size:,} bytes, more than "
                                   f"the limit of {limit:,} (${MAX_BYTES_ENV} raises it)")
            with archive.open(info) as handle:
                check_npy_size(npy_header(handle), name, file)
