"""Worker processes that keep what they computed between the phases of a job.

A build runs in phases (read and first pass, second pass, RDF), and each document's
intermediate results (its text, sentences and analyses) are only ever needed again by the
same document's next phase.  So each document stays in the worker that read it, and
later phases send the work to that worker: only small things cross between processes.

``Forked`` forks the workers once, after the models are loaded, so that all of them share
the parent's memory copy-on-write; ``Inline`` runs the same task functions in this process
(``--jobs 1``).  A task is a plain function ``task(context, item)``; the context is the
object each process keeps its state in.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from types import TracebackType
from typing import Any, Generic, TypeVar

C = TypeVar("C")
Task = Callable[[C, Any], Any]
Result = tuple[int, int, Any]  # (position of the item, worker that ran it, what it returned)


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory)."""


class Inline(Generic[C]):
    """The tasks in this process, one after the other: one worker, number 0."""

    def __init__(self, context: C) -> None:
        self.context = context
        self.size = 1

    def run(
        self, task: Task, items: Sequence[Any], owners: Sequence[int] | None = None
    ) -> Iterator[Result]:
        return ((k, 0, task(self.context, item)) for k, item in enumerate(items))

    def __enter__(self) -> Inline[C]:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Forked(Generic[C]):
    """``size`` processes forked from this one, each with its own copy of ``context``."""

    def __init__(self, context: C, size: int) -> None:
        fork = mp.get_context("fork")
        self.size = size
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        # Objects made so far (the models) are never scanned by the children's garbage
        # collector, so their pages are not written to and stay shared.
        gc.freeze()
        try:
            for _ in range(size):
                ours, theirs = fork.Pipe()
                proc = fork.Process(
                    target=_serve, args=(theirs, context, list(self._conns)), daemon=True
                )
                proc.start()
                theirs.close()
                self._conns.append(ours)
                self._procs.append(proc)
        except BaseException:
            self._stop()
            raise
        finally:
            gc.unfreeze()

    def run(
        self, task: Task, items: Sequence[Any], owners: Sequence[int] | None = None
    ) -> Iterator[Result]:
        """Start the items now; results come as they are ready.

        Without ``owners`` each item goes to whichever worker is free, one at a time.
        With them, item k goes to worker ``owners[k]``, each worker's items in one message
        (it holds what they need): a worker is only sent work once it has answered
        everything it was sent, so neither side can block the other on a full pipe.
        """
        queue: deque[tuple[int, Any]] = deque()
        busy: dict[int, int] = {}  # worker -> answers still to come
        if owners is None:
            queue.extend(enumerate(items))
            for w in range(min(self.size, len(queue))):
                self._send(w, task, [queue.popleft()])
                busy[w] = 1
        else:
            batches: dict[int, list[tuple[int, Any]]] = {}
            for k, item in enumerate(items):
                batches.setdefault(owners[k], []).append((k, item))
            for w, batch in batches.items():
                self._send(w, task, batch)
                busy[w] = len(batch)
        return self._results(task, queue, busy)

    def _results(
        self, task: Task, queue: deque[tuple[int, Any]], busy: dict[int, int]
    ) -> Iterator[Result]:
        while busy:
            for conn in wait([self._conns[w] for w in busy]):
                w = self._conns.index(conn)  # type: ignore[arg-type]
                k, ok, value = self._receive(w)
                if not ok:
                    raise value
                busy[w] -= 1
                if not busy[w]:
                    del busy[w]
                    if queue:
                        self._send(w, task, [queue.popleft()])
                        busy[w] = 1
                yield k, w, value

    def _send(self, w: int, task: Task, batch: list[tuple[int, Any]]) -> None:
        try:
            self._conns[w].send((task, batch))
        except OSError:
            raise self._died(w) from None

    def _receive(self, w: int) -> tuple[int, bool, Any]:
        try:
            return self._conns[w].recv()
        except (EOFError, OSError):
            raise self._died(w) from None

    def _died(self, w: int) -> WorkerDied:
        self._procs[w].join(timeout=5)
        return WorkerDied(f"build worker {w} died (exit code {self._procs[w].exitcode})")

    def _stop(self, wait_for: float = 0.0) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self._procs:
            proc.join(timeout=wait_for)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> Forked[C]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # After an error, a worker may still be busy with work nobody wants: do not wait.
        self._stop(wait_for=10.0 if kind is None else 0.0)


def _serve(conn: Connection, context: Any, inherited: list[Connection]) -> None:
    """A worker's loop: batches in, one answer per item out, until told to stop."""
    for other in inherited:  # our copies of the other workers' pipes: a dead parent means EOF
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task, batch = message
        for k, item in batch:
            try:
                answer = (k, True, task(context, item))
            except BaseException as exc:  # sent to the parent, which raises it
                answer = (k, False, _portable(exc))
            try:
                conn.send(answer)
            except OSError:
                return


def _portable(exc: BaseException) -> BaseException:
    """The exception, with the worker's traceback as a note, in a form that pickles."""
    text = "".join(traceback.format_exception(exc))
    try:
        exc.add_note("raised in a build worker:\n" + text)
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"in a build worker:\n{text}")
