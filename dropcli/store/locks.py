"""Who may train a run: ``flock`` locks that the kernel drops when their process dies.

The layout they live in (a run's ``lock``, ``.locks/<hash8>`` in the runs folder) and
what they mean for a run's status are part of the runs-store contract in ``dropcli.store.layout``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.store.layout import LOCK_FILE, LOCKS_DIR, run_key


class RunBusyError(RunStoreError):
    """Another live process is training this run."""


def _pid_alive(pid: int) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return False  # 0 and -1 would ask about whole process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a killed process whose parent died too stays a zombie until it is reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")
    except (OSError, ValueError):
        return True


def read_lock(run_dir: Path) -> dict | None:
    """The run's lock ({"pid", "host"}), None if there is none, {} if it is unreadable."""
    try:
        lock = json.loads((Path(run_dir) / LOCK_FILE).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return {}  # a lock torn while being written still means "someone was here"
    return lock if isinstance(lock, dict) else {}


def lock_is_live(lock: dict) -> bool:
    return lock.get("host") == socket.gethostname() and _pid_alive(lock.get("pid"))


class FileLock:
    """An exclusive ``flock`` on a file, held until ``release()`` or this process's death.

    ``FileLock.acquire(path, info)`` returns None if another process holds it. The file
    holds ``info`` as JSON while the lock is held and is removed on release; a process that
    dies leaves the file (a dead pid: the run reads ``crashed``) but not the lock.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: Path, info: dict) -> "FileLock | None":
        import fcntl

        path = Path(path)
        while True:
            # O_NOFOLLOW: a planted symlink named `lock` must not make us truncate its target
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            # We hold the inode we opened; it must still be the file at `path` (its holder
            # may have released it, i.e. unlinked it, between our open and our flock).
            try:
                same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        lock = cls(path, fd)
        try:
            data = json.dumps(info).encode()
            os.pwrite(fd, data, 0)  # in place: a stale lock taken over never reads empty meanwhile
            os.ftruncate(fd, len(data))
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self) -> None:
        """Remove the file, then drop the lock (in that order: see ``acquire``)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def _lock_info(**extra) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), **extra}


@contextlib.contextmanager
def claim_run(run_dir: Path, root: Path | None = None):
    """Hold ``run_dir`` exclusively while the block runs: its run id's lock in
    ``root/.locks`` (root: the runs folder, default ``run_dir.parent``) and its own
    ``lock``. Creates the folders. Raises RunBusyError if a live process holds either."""
    run_dir = Path(run_dir)
    locks = Path(root if root is not None else run_dir.parent) / LOCKS_DIR
    held = []
    try:
        wanted = ((locks / run_key(run_dir.name), _lock_info(run_dir=str(run_dir))), (run_dir / LOCK_FILE, _lock_info()))
        for path, info in wanted:
            for _ in range(100):
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    lock = FileLock.acquire(path, info)
                    break
                except (FileNotFoundError, FileExistsError):  # another process removed the empty .locks meanwhile
                    continue
            else:
                in_the_way = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
                if in_the_way is not None and not in_the_way.is_dir():
                    raise RunStoreError(f"{in_the_way}: a file is in the way; the run needs a folder here")
                raise RunStoreError(f"{path.parent}: cannot create this folder for the run's lock")
            if lock is None:
                raise RunBusyError(_busy_message(run_dir, path))
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if empty: stopped before the run wrote its first file
        with contextlib.suppress(OSError):
            locks.rmdir()  # only if empty: the runs folder keeps no trace of finished work


def _busy_message(run_dir: Path, path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        holder = {}
    holder = holder if isinstance(holder, dict) else {}
    who = f" (pid {holder['pid']})" if "pid" in holder else ""
    where = holder.get("run_dir")
    elsewhere = f" in {where}" if where and Path(where) != run_dir else ""
    return f"{run_dir}: another dropcli process{who} is training this run right now{elsewhere}"
