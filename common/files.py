"""Every file the project writes goes through here, so none is ever half-written or lost.

A write goes to a temporary file in the target's folder, which is flushed to disk (``fsync``),
renamed onto the target, and then the folder itself is flushed so that the rename survives a power
cut: the order SQLite uses. Without the first flush, ext4 may put the rename on disk before the data
and leave a zero-length file in place of the previous good one.

A folder that cannot be created or written and a full disk end in one ``UserError`` line naming the
folder; a failed write removes its temporary file and leaves the previous file in force.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from common.errors import UserError

# The errors a user fixes by choosing another folder or freeing space; others (EIO...) stay tracebacks.
FOLDER_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.EROFS,
                 errno.ENAMETOOLONG}
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class DiskFullError(UserError):
    """No space left where a file was being written; the message names the folder and the space needed."""

    def __init__(self, folder: str | Path, needed: int | None, fix: str) -> None:
        self.folder, self.needed = Path(folder), needed
        free = _free_bytes(self.folder)
        need = f"about {format_size(needed)} is needed" if needed else "more space is needed"
        have = f", {format_size(free)} is free" if free is not None else ""
        super().__init__(f"no space left on the device of {self.folder}: {need}{have}; {fix}")


def is_disk_full(error: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also as TensorFlow and h5py report them (in the message only)."""
    if getattr(error, "errno", None) in DISK_FULL_ERRNOS:
        return True
    return any(os.strerror(code) in str(error) for code in DISK_FULL_ERRNOS)


@contextlib.contextmanager
def disk_space(folder: str | Path, needed: int | None = None, fix: str = "free some space and run it again"):
    """Turns a full disk inside the block into one ``DiskFullError`` naming ``folder`` and ``needed`` bytes.

    A ``DiskFullError`` from a nested write passes through unless this block knows the whole size.
    """
    try:
        yield
    except DiskFullError:
        if needed is None:
            raise
        raise DiskFullError(folder, needed, fix) from None
    except Exception as error:
        if is_disk_full(error):
            raise DiskFullError(folder, needed, fix) from None
        raise


def make_dirs(folder: str | Path, fix: str = "choose a folder you can write to") -> Path:
    """Creates ``folder`` and its parents; a folder that cannot be made is one line naming what is in the way."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _folder_error(folder, error, fix) from None
    for created in reversed(missing):  # a new folder's entry is in its parent: flushed like a rename
        sync_folder(created.parent)
    return folder


def write_atomic(path: str | Path, text: str) -> None:
    """Writes ``text`` to ``path`` durably: temporary file, flush, rename, flush of the folder."""
    with atomic_path(path, needed=len(text)) as tmp, open(tmp, "w") as handle:
        handle.write(text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path, needed=len(data)) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None, needed: int | None = None):
    """Yields a temporary path beside ``path`` (same suffix, which Keras and matplotlib read the format
    from) for the caller to write; on success it is made durable and renamed onto ``path``, on failure
    removed. ``needed``: the bytes the write takes, named in the message if the disk is full."""
    path = Path(path)
    with disk_space(path.parent, needed):
        make_dirs(path.parent)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
        except OSError as error:
            raise _folder_error(path.parent, error, "choose a folder you can write to") from None
        os.close(fd)
        try:
            yield tmp
            publish(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def publish(tmp: str | Path, path: str | Path) -> None:
    """Flushes a finished temporary file, renames it onto ``path`` with the usual permissions (mkstemp
    makes 0600) and flushes the folder, so ``path`` holds the old file or the new one, never neither."""
    sync_files(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    sync_folder(Path(path).parent)


def temp_file_beside(path: str | Path, mode: str = "w"):
    """An open temporary file beside ``path`` for a long write (a recording); ``publish`` it when done."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _folder_error(path.parent, error, "choose a folder you can write to") from None
    return os.fdopen(fd, mode), tmp


def sync_files(*paths: str | Path) -> None:
    """Flushes files written by someone else (TensorFlow, Keras, h5py) to disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_folder(folder: str | Path) -> None:
    """Flushes a folder's entries (renames, new files) to disk; a no-op where the file system refuses."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF):  # some file systems cannot sync a folder
            raise
    finally:
        os.close(fd)


class FolderLock:
    """An exclusive ``flock`` on ``<folder>/.lock``, so two processes never write one run folder.

    The kernel drops the lock when the holder ends, however it ends (exit, Ctrl-C, ``kill -9``), so a
    crashed run never leaves it stuck; the file itself stays, holding the last holder's pid.
    Re-entrant within one holder: nested ``acquire``/``release`` pairs count.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> int | None:
        """Takes the lock and returns None, or returns the pid of the process holding it (0 if unknown)."""
        if self._fd is not None:
            self._depth += 1
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            return int(holder) if holder.isdigit() else 0
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd, self._depth = fd, 1
        return None

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth == 0:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def format_size(size: int) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{max(1, -(-size // 1024))} KiB"


def _free_bytes(folder: Path) -> int | None:
    for existing in (folder, *folder.parents):
        if existing.is_dir():
            return shutil.disk_usage(existing).free
    return None


def _folder_error(folder: Path, error: OSError, fix: str) -> Exception:
    if error.errno in DISK_FULL_ERRNOS:
        return DiskFullError(folder, None, "free some space and run it again")
    if error.errno not in FOLDER_ERRNOS:
        return error
    return UserError(f"cannot write to the folder {folder}: {_obstacle(folder, error)}; {fix}")


def _obstacle(folder: Path, error: OSError) -> str:
    """What stops ``folder`` from being written: a file where a folder should be, or its permissions."""
    for existing in (folder, *folder.parents):
        if existing.exists() or existing.is_symlink():
            if not existing.is_dir():
                return f"{existing} is a file, not a folder"
            if not os.access(existing, os.W_OK):
                return f"{existing} is not writable"
            break
    return error.strerror or str(error)
