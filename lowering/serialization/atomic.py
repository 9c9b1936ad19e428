"""Atomic file writes: the whole new content appears at once, or nothing changes."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat


def _fsync_directory(directory: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _create_temporary(directory: str, base: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {base!r} in {directory}")


def write_atomic(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically.

    The bytes go to a temporary file in the target's directory, are flushed and
    fsync'ed, then ``os.replace`` moves them onto ``path`` (through a symlink, the
    link's target is replaced; an existing file's permission bits are kept). On any
    error the temporary file is removed and an existing ``path`` is left untouched.
    """
    target = os.path.realpath(os.fsdecode(os.fspath(path)))
    directory, base = os.path.split(target)
    fd, tmp = _create_temporary(directory, base)
    try:
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


