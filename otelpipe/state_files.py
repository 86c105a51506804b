"""Private, symlink-proof files in `OTELPIPE_STATE_DIR` for the SQLite stores (SLO windows, incidents).

Incident history names services, routes and trace ids, so directories are created 0700 and files
0600 whatever the umask. SQLite follows symlinks and creates missing targets, so a symlink planted
where a state file (or its `-wal`/`-shm`/`-journal` sidecar) belongs would make it overwrite or
create any file the app can write: such a path is refused before SQLite opens it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SIDECARS = ("-wal", "-shm", "-journal")


class UnsafeStateFile(OSError):
    """A state path is a symlink or not a regular file; nothing was opened or created through it."""


def private_dir(path: str | Path) -> Path:
    """`path`, with any missing directories created 0700 (existing ones are left as they are)."""
    directory = Path(path)
    missing: list[Path] = []
    probe = directory
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(created, DIR_MODE)  # mkdir's mode is filtered by the umask
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")
    return directory


def private_file(path: str | Path) -> os.stat_result:
    """Create `path` 0600 (or tighten an existing one), refusing symlinks; returns its identity.

    Call before handing the path to SQLite, then `check_same_file` after connecting: the
    identity check catches a swap between the two.
    """
    target = Path(path)
    for sidecar in SIDECARS:
        _refuse_unsafe(target.with_name(target.name + sidecar), may_be_missing=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a FIFO planted there must not block the open
    try:
        fd = os.open(target, flags, FILE_MODE)
    except OSError as exc:
        if os.path.islink(target):
            raise UnsafeStateFile(f"{target} is a symlink; refusing to open state through it") from None
        raise exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeStateFile(f"{target} is not a regular file")
        if stat.S_IMODE(info.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for sidecar in SIDECARS:
        existing = target.with_name(target.name + sidecar)
        if existing.exists():
            os.chmod(existing, FILE_MODE, follow_symlinks=False)
    return info


def check_same_file(path: str | Path, identity: os.stat_result) -> None:
    """Raise `UnsafeStateFile` if `path` is no longer the file `private_file` prepared."""
    info = _refuse_unsafe(Path(path), may_be_missing=False)
    if info is None or (info.st_dev, info.st_ino) != (identity.st_dev, identity.st_ino):
        raise UnsafeStateFile(f"{path} was replaced while it was being opened")


def refuse_symlink(path: str | Path) -> None:
    """Raise `UnsafeStateFile` if `path` exists and is a symlink or not a regular file."""
    target = Path(path)
    _refuse_unsafe(target, may_be_missing=True)
    for sidecar in SIDECARS:
        _refuse_unsafe(target.with_name(target.name + sidecar), may_be_missing=True)


def _refuse_unsafe(path: Path, *, may_be_missing: bool) -> os.stat_result | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if may_be_missing:
            return None
        raise
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeStateFile(f"{path} is a symlink; refusing to open state through it")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeStateFile(f"{path} is not a regular file")
    return info
