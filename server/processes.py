"""The process tree behind the embedded store: nursery → zygotes → query workers.

pyoxigraph cannot cancel a running query, so each query runs in a worker process that
can be SIGKILLed when it overruns.  Forking is only safe from a single-threaded
process, and the server has threads once it runs, so::

    server ── nursery            forked at start-up, before any thread; holds no graph
                └─ zygote        one per graph generation: loads the dump, then waits
                     └─ worker   forked (copy-on-write) from its zygote, one job at a time

A reload asks the nursery for a new zygote, which loads the new dump while the old
generation keeps serving (see ``workers.Pool``).  A disk store is built by its zygote
and opened read-only by each worker (RocksDB does not survive a fork).  Every process
gets SIGKILL when its parent dies, so nothing outlives the server.

These are the blocking, parent-side handles; the asyncio side is ``workers.py``.
Wire format on the socketpairs: 4-byte big-endian length + pickle.  Only our own
processes are at either end.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from server import jobs, store
from server.executor import WorkerDied

_LEN = struct.Struct("!I")
# Workers run jobs on a thread with a large stack: pyoxigraph's parser and evaluator
# recurse once per nesting level, and a 64 KiB query of `!!!!…` or `1+1+…` overflows
# the 8 MiB main-thread stack (SIGSEGV).  Only the pages a query touches are used.
WORKER_STACK = 256 << 20


# -- blocking framing ------------------------------------------------------------------


def send(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LEN.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv(sock: socket.socket) -> Any:
    head = _recv_exact(sock, _LEN.size)
    if head is None:
        return None
    body = _recv_exact(sock, _LEN.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _send_child(sock: socket.socket, pid: int, fd: int) -> None:
    """Hand a child's socket (and, where the kernel has them, a pidfd) to the parent."""
    fds = [fd]
    with contextlib.suppress(OSError, AttributeError):
        fds.append(os.pidfd_open(pid))
    socket.send_fds(sock, [_LEN.pack(pid)], fds)
    for extra in fds[1:]:
        os.close(extra)


def _recv_child(sock: socket.socket) -> tuple[int, socket.socket, int | None]:
    msg, fds, _flags, _addr = socket.recv_fds(sock, _LEN.size, 2)
    if not fds:
        raise WorkerDied("the parent process did not answer")
    (pid,) = _LEN.unpack(msg)
    return pid, socket.socket(fileno=fds[0]), fds[1] if len(fds) > 1 else None


def kill(pid: int, pidfd: int | None) -> None:
    """SIGKILL a process; through its pidfd when there is one (no pid-reuse race)."""
    with contextlib.suppress(ProcessLookupError, OSError):
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def close_fd(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


# -- child processes -------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so no query outlives the server."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _serve_jobs(sock: socket.socket, opener: Callable[[], ox.Store]) -> None:
    store_ = opener()
    while True:
        job = recv(sock)
        if job is None:  # the server went away
            return
        try:
            reply = jobs.execute(store_, job)
        except Exception as exc:  # never let a bad job kill the worker silently
            reply = {"status": 500, "error": f"internal error: {type(exc).__name__}: {exc}"}
        send(sock, reply)


def _worker_main(sock: socket.socket, opener: Callable[[], ox.Store]) -> None:
    try:
        threading.stack_size(WORKER_STACK)
        thread = threading.Thread(target=_serve_jobs, args=(sock, opener), daemon=True)
        thread.start()
    except (RuntimeError, ValueError, MemoryError):  # no such stack: the main thread's
        _serve_jobs(sock, opener)
        return
    thread.join()


def _zygote_main(
    ctrl: socket.socket,
    opener: Callable[[], ox.Store],
    update_store: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    while True:
        msg = recv(ctrl)
        if msg is None:  # the server retired this generation, or went away
            return
        if msg[0] == "spawn":
            parent_end, child_end = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                try:
                    ctrl.close()
                    parent_end.close()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    _die_with_parent()
                    _worker_main(child_end, opener)
                finally:
                    os._exit(0)
            child_end.close()
            _send_child(ctrl, pid, parent_end.fileno())
            parent_end.close()
        elif msg[0] == "update":
            try:
                reply = update_store(msg[1])
            except Exception as exc:
                reply = {"status": 500, "error": f"update failed: {exc}"}
            send(ctrl, reply)


def _become_zygote(sock: socket.socket, spec: dict[str, Any]) -> None:
    """In a fresh child of the nursery: load the graph, report, then fork workers."""
    try:
        if spec.get("data") is None:  # the remote backend's checkers: an empty store
            loaded = store.Loaded(ox.Store(), None, "", False)
        else:
            store_dir = spec.get("store_dir")
            loaded = store.load(Path(spec["data"]), Path(store_dir) if store_dir else None)
    except store.StoreError as exc:
        send(sock, {"error": str(exc)})
        return
    except Exception as exc:  # e.g. MemoryError: still one line for the server to report
        send(sock, {"error": f"{spec.get('data')}: cannot load: {type(exc).__name__}: {exc}"})
        return
    if loaded.store is not None:
        mem = loaded.store
        opener: Callable[[], ox.Store] = lambda: mem  # noqa: E731 - inherited via fork

        def update_store(job: dict[str, Any]) -> dict[str, Any]:
            return jobs.execute(mem, job)

    else:
        path = str(loaded.path)
        opener = lambda: ox.Store.read_only(path)  # noqa: E731

        def update_store(job: dict[str, Any]) -> dict[str, Any]:
            return {"status": 500, "error": "disk stores are updated by the server process"}

    info = {
        "path": str(loaded.path) if loaded.path else None,
        "dump_sha256": loaded.dump_sha256,
        "reused": loaded.reused,
    }
    del loaded
    send(sock, {"ready": info})
    _zygote_main(sock, opener, update_store)


def _nursery_main(ctrl: socket.socket) -> None:
    # Children are reaped automatically; ^C and terminal hang-ups are the server's
    # business (SIGHUP means "reload" to it), and these settings are inherited.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        msg = recv(ctrl)
        if msg is None:
            return
        parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                parent_end.close()
                _die_with_parent()
                _become_zygote(child_end, msg[1])
            finally:
                os._exit(0)
        child_end.close()
        _send_child(ctrl, pid, parent_end.fileno())
        parent_end.close()


# -- parent-side handles ------------------------------------------------------------------


class Zygote:
    """Handle on one zygote (one graph generation); blocking calls under a lock."""

    def __init__(self, pid: int, ctrl: socket.socket, pidfd: int | None, info: dict) -> None:
        self.pid = pid
        self._ctrl = ctrl
        self._pidfd = pidfd
        self._lock = threading.Lock()
        self.disk_path: Path | None = Path(info["path"]) if info.get("path") else None
        self.dump_sha256: str = info.get("dump_sha256", "")
        self.reused: bool = bool(info.get("reused"))

    def spawn(self) -> tuple[int, socket.socket, int | None]:
        """Fork a worker: its pid, socket and pidfd (None on kernels without pidfds)."""
        with self._lock:
            send(self._ctrl, ("spawn",))
            return _recv_child(self._ctrl)

    def apply_update(self, job: dict[str, Any]) -> dict[str, Any]:
        """Apply a SPARQL update to this generation's store.

        In memory, the zygote holds the store.  RocksDB's background threads do not
        survive fork(): a forked process can read a disk store but not write it, so a
        disk store is written here, in the server process, while no worker has it open
        (see ``Pool.update``)."""
        if self.disk_path is not None:
            rw = ox.Store(str(self.disk_path))
            try:
                return jobs.execute(rw, job)
            finally:
                del rw
        with self._lock:
            send(self._ctrl, ("update", job))
            reply = recv(self._ctrl)
        if reply is None:
            raise WorkerDied("zygote died during an update")
        return reply

    def close(self) -> None:
        """End the zygote; its workers follow (parent-death signal)."""
        with contextlib.suppress(OSError):
            self._ctrl.close()
        kill(self.pid, self._pidfd)
        close_fd(self._pidfd)
        self._pidfd = None


class Nursery:
    """Forks zygotes on request.  Create it while the process is single-threaded."""

    def __init__(self) -> None:
        parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                parent_end.close()
                _die_with_parent()
                _nursery_main(child_end)
            finally:
                os._exit(0)
        child_end.close()
        self.pid = pid
        self._ctrl = parent_end
        self._lock = threading.Lock()

    def zygote(self, data: Path | None, store_dir: Path | None = None) -> Zygote:
        """A zygote holding ``data`` (None: an empty store), once it has loaded.

        Blocks while the dump loads; raises ``store.StoreError`` (one line) when it
        cannot be loaded, and the zygote is gone.
        """
        spec = {
            "data": str(data) if data is not None else None,
            "store_dir": str(store_dir) if store_dir else None,
        }
        with self._lock:
            send(self._ctrl, ("zygote", spec))
            pid, sock, pidfd = _recv_child(self._ctrl)
        try:
            reply = recv(sock)  # outside the lock: loading may take minutes
        except OSError:
            reply = None
        if not reply or "ready" not in reply:
            with contextlib.suppress(OSError):
                sock.close()
            kill(pid, pidfd)
            close_fd(pidfd)
            if reply and "error" in reply:
                raise store.StoreError(reply["error"])
            raise store.StoreError(f"{data}: the loading process died (out of memory?)")
        return Zygote(pid, sock, pidfd, reply["ready"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._ctrl.close()
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
