"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A reader never sees a half-written file: either the old content or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    On an exception the temporary file is removed and ``target`` is left untouched.

    Example::

        with atomic_path("data.h5") as tmp:
            with h5py.File(tmp, "w") as f:
                ...
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=suffix if suffix is not None else ".tmp",
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (fsync before the rename)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(target: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_save_npy(target: str | Path, array: Any) -> None:
    """Save one array as ``.npy`` atomically."""
    import numpy as np

    with atomic_path(target, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array))


def stale_temporaries(target: str | Path) -> list[Path]:
    """The temporary files :func:`atomic_path` left beside ``target`` (``.NAME.XXXXXXXX*``):
    a writer killed between creating its temporary file and the rename leaves one for good.

    Only call it while holding ``target``'s lock (:func:`exclusive_lock`): then no live writer
    owns them and they can be removed.
    """
    target = Path(target)
    prefix = f".{target.name}."
    if not target.parent.is_dir():
        return []
    return sorted(
        path
        for path in target.parent.iterdir()
        if path.name.startswith(prefix) and path.is_file() and len(path.name) > len(prefix) + 7
    )


class LockedError(RuntimeError):
    """Another live process holds the lock; ``holder`` is what it recorded (pid, host, time)."""

    def __init__(self, lock: Path, holder: str) -> None:
        super().__init__(f"{lock} is held by another process ({holder or 'holder unknown'})")
        self.lock = lock
        self.holder = holder


@contextlib.contextmanager
def exclusive_lock(lock: str | Path) -> Iterator[Path]:
    """Hold an exclusive advisory lock on the file ``lock`` (created if needed) while inside.

    Non-blocking: raises :class:`LockedError` at once if another process holds it, with the
    holder's record (``pid=..., host=..., since=...``) read from the file. The lock is an
    ``fcntl.flock`` on the open file, so the kernel releases it when the holder dies (even by
    SIGKILL): a stale lock file never blocks a rerun. The file is removed on exit. On systems
    without ``fcntl`` (Windows) no lock is taken.
    """
    import datetime
    import socket

    lock = Path(lock)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield lock
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise LockedError(lock, holder) from None
        # the file may have been removed (and recreated) by the previous holder meanwhile
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        record = f"pid={os.getpid()}, host={socket.gethostname()}, since={since}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode("utf-8"), 0)
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
