"""The embedded ``Executor``: a pool of query worker processes, one generation per graph.

Each query runs in a worker process (``processes.py``); one that overruns its time
limit is SIGKILLed and replaced.  Workers belong to a *generation*: the zygote that
holds one loaded graph and the workers forked from it.  A reload prepares a new
generation beside the current one (its zygote loads the new dump, its workers are
forked), then switches new requests to it in one step; requests already *pinned* to the
old generation finish there, and the old generation is retired when the last of them
is done.  So no request fails and none sees half of each graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import socket
from collections.abc import Callable
from typing import Any

from server.executor import PoolBusy, QueryTimeout, WorkerDied
from server.processes import _LEN, Zygote, close_fd, kill

__all__ = ["Generation", "Pool", "PoolBusy", "QueryTimeout", "WorkerDied"]

_numbers = itertools.count(1)


class _Worker:
    def __init__(self, pid: int, sock: socket.socket, pidfd: int | None, epoch: int) -> None:
        self.pid = pid
        self.sock = sock
        self.pidfd = pidfd
        self.epoch = epoch  # the generation's update count when it was forked
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

    def alive(self) -> bool:
        """False once the worker's end of the socket is closed (the process is gone)."""
        return self.reader is not None and not self.reader.at_eof()

    def kill(self) -> None:
        kill(self.pid, self.pidfd)
        close_fd(self.pidfd)
        self.pidfd = None
        if self.writer is not None:
            self.writer.close()
        else:
            self.sock.close()


class Generation:
    """One loaded graph: its zygote, its workers, and who is still using it."""

    def __init__(self, zygote: Zygote, size: int) -> None:
        self.number = next(_numbers)
        self.zygote = zygote
        self.size = size
        self.epoch = 0  # bumped by each update: workers forked before it are stale
        self.idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self.workers: set[_Worker] = set()
        self.pending = 0  # spawns in flight
        self.pins = 0  # requests (and start-up reads) that must finish on this graph
        self.retiring = False
        self.closed = asyncio.Event()
        self.on_closed: Callable[[], None] | None = None

    async def spawn(self) -> None:
        if self.closed.is_set():
            return
        self.pending += 1
        epoch = self.epoch
        try:
            loop = asyncio.get_running_loop()
            pid, sock, pidfd = await loop.run_in_executor(None, self.zygote.spawn)
            w = _Worker(pid, sock, pidfd, epoch)
            await w.connect()
        finally:
            self.pending -= 1
        if self.closed.is_set() or epoch != self.epoch:  # retired or updated meanwhile
            w.kill()
            if not self.closed.is_set():
                self.top_up()
            return
        self.workers.add(w)
        self.idle.put_nowait(w)

    async def fill(self) -> None:
        while len(self.workers) + self.pending < self.size and not self.closed.is_set():
            await self.spawn()

    def top_up(self) -> None:
        missing = self.size - len(self.workers) - self.pending
        for _ in range(max(missing, 0)):
            task = asyncio.get_running_loop().create_task(self.spawn())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def discard(self, w: _Worker) -> None:
        w.kill()
        self.workers.discard(w)
        if not self.closed.is_set():
            self.top_up()

    def release(self, w: _Worker) -> None:
        if w.epoch != self.epoch or self.closed.is_set():
            self.discard(w)
        else:
            self.idle.put_nowait(w)

    def kill_workers(self) -> None:
        for w in list(self.workers):
            w.kill()
        self.workers.clear()
        while not self.idle.empty():
            self.idle.get_nowait()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.kill_workers()
        self.zygote.close()
        if self.on_closed is not None:
            self.on_closed()


class Pool:
    """Asyncio-side pool: ``await pool.run(job, timeout)``; the embedded ``Executor``."""

    def __init__(self, zygote: Zygote, size: int) -> None:
        self.size = size
        self.generation = 0  # cache key: bumped by updates and by switching graphs
        self.current = Generation(zygote, size)
        self._retiring: set[Generation] = set()
        self._lock = asyncio.Lock()  # one update at a time

    async def start(self) -> None:
        await self.current.fill()

    # -- generations ---------------------------------------------------------------------

    def lease(self) -> Generation:
        return self.current

    def pin(self, gen: Generation | None) -> None:
        if gen is not None:
            gen.pins += 1

    def unpin(self, gen: Generation | None) -> None:
        if gen is None:
            return
        gen.pins -= 1
        if gen.retiring and gen.pins <= 0:
            self._retire_now(gen)

    async def prepare(self, zygote: Zygote) -> Generation:
        """A new generation with its workers forked, not yet serving."""
        gen = Generation(zygote, self.size)
        try:
            await gen.fill()
        except BaseException:
            gen.close()
            raise
        return gen

    def switch(self, gen: Generation, on_retired: Callable[[], None] | None = None) -> None:
        """Serve new requests from ``gen``; the old generation retires once unpinned.

        Synchronous, so no request can start between the switch and its caller's
        bookkeeping (the name index and counts of the new graph)."""
        old = self.current
        self.current = gen
        self.generation += 1
        old.retiring = True
        old.on_closed = on_retired
        self._retiring.add(old)
        if old.pins <= 0:
            self._retire_now(old)

    def _retire_now(self, gen: Generation) -> None:
        self._retiring.discard(gen)
        gen.close()

    # -- running jobs --------------------------------------------------------------------

    async def run(
        self, job: dict[str, Any], timeout: float, lease: Generation | None = None
    ) -> dict[str, Any]:
        gen = lease if lease is not None and not lease.closed.is_set() else self.current
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                w = await asyncio.wait_for(gen.idle.get(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise PoolBusy(f"all query workers stayed busy for {timeout:g} s") from None
            if w.alive():
                break
            gen.discard(w)  # died while idle (OOM killer, a stray signal): not this job's fault
        try:
            reply = await asyncio.wait_for(w.call(job), max(deadline - loop.time(), 0.001))
        except TimeoutError:
            gen.discard(w)
            raise QueryTimeout(f"query exceeded the time limit of {timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            gen.discard(w)
            raise WorkerDied(f"query worker died: {type(exc).__name__}") from None
        except BaseException:  # cancelled mid-call: the worker's state is unknown
            gen.discard(w)
            raise
        gen.release(w)
        return reply

    async def update(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Apply an update to the current graph, then replace its workers (fresh snapshot)."""
        async with self._lock:
            gen = self.current
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            if gen.zygote.disk_path is not None:
                # A disk store must have no reader while it is written: wait for older
                # generations reading the same directory (a reload of an unchanged dump)
                # to finish; past the time limit their queries are stopped.
                for old in list(self._retiring):
                    if old.zygote.disk_path == gen.zygote.disk_path:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                old.closed.wait(), max(deadline - loop.time(), 0.01)
                            )
                        self._retire_now(old)
            # Take every worker out of service first: no query should see half a change.
            taken = 0
            while taken < len(gen.workers):
                try:
                    await asyncio.wait_for(gen.idle.get(), max(deadline - loop.time(), 0.01))
                    taken += 1
                except TimeoutError:
                    break
            # Workers still busy after the wait are killed too (their clients get 503).
            gen.kill_workers()
            try:
                reply = await loop.run_in_executor(None, gen.zygote.apply_update, job)
            finally:
                gen.epoch += 1
                self.generation += 1
                await gen.fill()
            return reply

    async def close(self) -> None:
        for gen in [self.current, *self._retiring]:
            gen.close()
        self._retiring.clear()
