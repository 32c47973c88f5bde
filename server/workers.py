"""A pool of query worker processes that can be killed when a query overruns.

pyoxigraph cannot cancel a running query, so each query runs in a worker process;
an overrun worker is SIGKILLed and replaced.  Workers are forked from a *zygote*:
a single-threaded process forked from the loader right after the store was loaded,
before any server thread exists.  Forking from it is safe (no locks held by other
threads) and cheap (the in-memory store is shared copy-on-write).  A disk store is
instead opened read-only by each worker (RocksDB does not survive a fork).

Wire format on the socketpairs: 4-byte big-endian length + pickle.  Only our own
processes are at either end.
"""

from __future__ import annotations

import asyncio
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

from server import jobs
from server.executor import PoolBusy, QueryTimeout, WorkerDied

__all__ = ["Pool", "PoolBusy", "QueryTimeout", "WorkerDied", "Zygote"]

_LEN = struct.Struct("!I")


# -- blocking framing (zygote / worker side) ------------------------------------------


def _send(sock: socket.socket, obj: Any) -> None:
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


def _recv(sock: socket.socket) -> Any:
    head = _recv_exact(sock, _LEN.size)
    if head is None:
        return None
    body = _recv_exact(sock, _LEN.unpack(head)[0])
    return None if body is None else pickle.loads(body)


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


def _worker_main(sock: socket.socket, opener: Callable[[], ox.Store]) -> None:
    store = opener()
    while True:
        job = _recv(sock)
        if job is None:  # the server went away
            return
        try:
            reply = jobs.execute(store, job)
        except Exception as exc:  # never let a bad job kill the worker silently
            reply = {"status": 500, "error": f"internal error: {type(exc).__name__}: {exc}"}
        _send(sock, reply)


def _zygote_main(
    ctrl: socket.socket, opener: Callable[[], ox.Store], update_store: Callable
) -> None:
    # Reap killed workers automatically; ignore ^C (the server shuts us down).
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        msg = _recv(ctrl)
        if msg is None:
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
            socket.send_fds(ctrl, [_LEN.pack(pid)], [parent_end.fileno()])
            parent_end.close()
        elif msg[0] == "update":
            try:
                reply = update_store(msg[1])
            except Exception as exc:
                reply = {"status": 500, "error": f"update failed: {exc}"}
            _send(ctrl, reply)


class Zygote:
    """Handle on the zygote process (parent side, blocking calls under a lock)."""

    def __init__(self, store: ox.Store | None, disk_path: Path | None) -> None:
        if store is not None:
            opener: Callable[[], ox.Store] = lambda: store  # noqa: E731 - inherited via fork

            def update_store(job: dict[str, Any]) -> dict[str, Any]:
                return jobs.execute(store, job)

            self.apply_update: Callable[[dict[str, Any]], dict[str, Any]] = self.update
        else:
            assert disk_path is not None
            path = str(disk_path)
            opener = lambda: ox.Store.read_only(path)  # noqa: E731

            def update_store(job: dict[str, Any]) -> dict[str, Any]:
                return {"status": 500, "error": "disk stores are updated by the server process"}

            # RocksDB's background threads do not survive fork(): a forked process can
            # read but not write.  Updates therefore run here, in the server process,
            # while no worker has the store open (see Pool.update).
            def apply_update(job: dict[str, Any]) -> dict[str, Any]:
                rw = ox.Store(path)
                try:
                    return jobs.execute(rw, job)
                finally:
                    del rw

            self.apply_update = apply_update

        parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                parent_end.close()
                _die_with_parent()
                _zygote_main(child_end, opener, update_store)
            finally:
                os._exit(0)
        child_end.close()
        self.pid = pid
        self._ctrl = parent_end
        self._lock = threading.Lock()

    def spawn(self) -> tuple[int, socket.socket]:
        with self._lock:
            _send(self._ctrl, ("spawn",))
            msg, fds, _flags, _addr = socket.recv_fds(self._ctrl, _LEN.size, 1)
            if not fds:
                raise WorkerDied("zygote did not answer")
            (pid,) = _LEN.unpack(msg)
            return pid, socket.socket(fileno=fds[0])

    def update(self, job: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            _send(self._ctrl, ("update", job))
            reply = _recv(self._ctrl)
            if reply is None:
                raise WorkerDied("zygote died during an update")
            return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._ctrl.close()
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


class _Worker:
    def __init__(self, pid: int, sock: socket.socket, generation: int) -> None:
        self.pid = pid
        self.sock = sock
        self.generation = generation
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(sock=self.sock)

    async def call(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.reader is not None and self.writer is not None
        data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_LEN.pack(len(data)) + data)
        await self.writer.drain()
        head = await self.reader.readexactly(_LEN.size)
        body = await self.reader.readexactly(_LEN.unpack(head)[0])
        return pickle.loads(body)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.writer is not None:
            self.writer.close()
        else:
            self.sock.close()


class Pool:
    """Asyncio-side pool: ``await pool.run(job, timeout)``; the embedded ``Executor``."""

    def __init__(self, zygote: Zygote, size: int) -> None:
        self.zygote = zygote
        self.size = size
        self.generation = 0  # bumped by updates; stale workers are replaced
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._update_lock = asyncio.Lock()
        self._pending = 0  # spawns in flight
        self._closed = False

    async def start(self) -> None:
        for _ in range(self.size):
            await self._spawn()

    async def _spawn(self) -> None:
        if self._closed:
            return
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            pid, sock = await loop.run_in_executor(None, self.zygote.spawn)
            w = _Worker(pid, sock, self.generation)
            await w.connect()
        finally:
            self._pending -= 1
        self._all.add(w)
        self._idle.put_nowait(w)

    def _top_up(self) -> None:
        missing = self.size - len(self._all) - self._pending
        for _ in range(max(missing, 0)):
            task = asyncio.get_running_loop().create_task(self._spawn())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _discard(self, w: _Worker) -> None:
        w.kill()
        self._all.discard(w)
        if not self._closed:
            self._top_up()

    def _release(self, w: _Worker) -> None:
        if w.generation != self.generation:
            self._discard(w)
        else:
            self._idle.put_nowait(w)

    async def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            w = await asyncio.wait_for(self._idle.get(), timeout)
        except TimeoutError:
            raise PoolBusy(f"all query workers stayed busy for {timeout:g} s") from None
        try:
            reply = await asyncio.wait_for(w.call(job), max(deadline - loop.time(), 0.001))
        except TimeoutError:
            self._discard(w)
            raise QueryTimeout(f"query exceeded the time limit of {timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self._discard(w)
            raise WorkerDied(f"query worker died: {type(exc).__name__}") from None
        except BaseException:  # cancelled mid-call: the worker's state is unknown
            self._discard(w)
            raise
        self._release(w)
        return reply

    async def update(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Apply an update in the zygote, then replace every worker (fresh snapshot)."""
        async with self._update_lock:
            # Take every worker out of service first: a disk store must have no
            # reader while the zygote writes, and no query should see half a change.
            taken: list[_Worker] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(taken) < len(self._all):
                try:
                    taken.append(
                        await asyncio.wait_for(self._idle.get(), max(deadline - loop.time(), 0.01))
                    )
                except TimeoutError:
                    break
            # Workers still busy after the wait are killed too (their clients get 503).
            for w in list(self._all):
                w.kill()
            self._all.clear()
            try:
                reply = await loop.run_in_executor(None, self.zygote.apply_update, job)
            finally:
                self.generation += 1
                while len(self._all) + self._pending < self.size:
                    await self._spawn()
            return reply

    async def close(self) -> None:
        self._closed = True
        for w in list(self._all):
            w.kill()
        self._all.clear()
        self.zygote.close()
