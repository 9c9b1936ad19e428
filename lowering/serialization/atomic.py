"""Atomic file writes: the whole new content appears at once, or nothing changes.

``write_atomic`` is the one writer behind every file the project saves
(``nd.save``, ``save_parameters``, ``export``, ``Symbol.save``,
``Trainer.save_states``, StableHLO artifacts).

Temporary files are named ``.<target name>.<pid>.<12 hex>.hybrid-tmp`` and live
next to the target (``.<sha1 of name>...`` when the name is too long for that).
While a writer fills one it holds an exclusive ``flock`` on it. A process
killed mid-write (SIGKILL, ``os._exit``, power loss) cannot clean up, so every
save of a target first removes that target's leftovers: temporary files of
this pattern whose writer process no longer exists and whose lock nobody holds.
A live writer's file (another process or thread saving the same target right
now) is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["TEMP_SUFFIX", "temp_name_pattern", "write_atomic"]

TEMP_SUFFIX = ".hybrid-tmp"
"""Suffix of every temporary file ``write_atomic`` creates."""

_NAME_MAX = 255  # bytes in one path component on common file systems
_TEMP_EXTRA = len(".") + 10 + len(".") + 12 + len(TEMP_SUFFIX) + 1  # pid, token, dot prefix


def _stem(base: str) -> str:
    """The target-derived part of the temporary name (hashed when too long)."""
    if len(os.fsencode(base)) + _TEMP_EXTRA <= _NAME_MAX:
        return base
    return "h" + hashlib.sha1(os.fsencode(base)).hexdigest()


def temp_name_pattern(base: str) -> re.Pattern[str]:
    """The regular expression matching temporary names for target file name ``base``.

    Group 1 is the writer's process id.
    """
    return re.compile(
        r"\." + re.escape(_stem(base)) + r"\.(\d{1,10})\.[0-9a-f]{12}" + re.escape(TEMP_SUFFIX)
    )


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


def _process_exists(pid: int) -> bool:
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) terminates on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (owned by another user), or cannot tell: keep the file
    return True


def _remove_if_abandoned(path: str, pid: int) -> None:
    if pid == os.getpid() or _process_exists(pid):
        return
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # a writer on another host (shared file system) still holds it
        with contextlib.suppress(OSError):
            os.unlink(path)
    finally:
        os.close(fd)


def _remove_leftovers(directory: str, base: str) -> None:
    """Delete temporary files of ``base`` left behind by writers that were killed."""
    pattern = temp_name_pattern(base)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match is not None:
            _remove_if_abandoned(os.path.join(directory, name), int(match.group(1)))


def _create_temporary(directory: str, base: str) -> tuple[int, str]:
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    stem = _stem(base)
    for _ in range(100):
        name = f".{stem}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        candidate = os.path.join(directory, name)
        try:
            fd = os.open(candidate, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd, candidate
    raise FileExistsError(f"could not create a temporary file next to {base!r} in {directory}")


def write_atomic(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically.

    The bytes go to a temporary file in the target's directory (named as the
    module docstring says), are flushed and fsync'ed, then ``os.replace`` moves
    them onto ``path``. A symlink at ``path`` is replaced by the new file; the
    file it pointed to is never written. An existing regular file's permission
    bits are kept. On any error the temporary file is removed and an existing
    ``path`` is left untouched; temporary files that killed writers left for
    the same target are removed first.
    """
    target = os.path.abspath(os.fsdecode(os.fspath(path)))
    directory, base = os.path.split(target)
    if not base:
        raise IsADirectoryError(f"cannot write a file at {target!r}: the path names a directory")
    _remove_leftovers(directory, base)
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
            try:
                info = os.lstat(target)
            except FileNotFoundError:
                info = None
            if info is not None and stat.S_ISREG(info.st_mode):
                os.chmod(tmp, stat.S_IMODE(info.st_mode))
            # the lock is held until the file has its final name (closing releases it)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
