"""The seam between the HTTP side and the store: something that executes jobs.

A job is a plain dict (``kind``: query, rows, dump or update; see ``jobs.py``) and its
reply is a plain dict with a ``status``.  Two implementations:

- ``workers.Pool``: the embedded pyoxigraph store, one forked worker process per
  running query (killed on overrun);
- ``remote.RemoteExecutor``: any SPARQL 1.1 store over HTTP (``--backend sparql``).

Everything above this seam (limits, safety checks, caches, canned queries, pages)
is shared, so both backends answer clients the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

Job = dict[str, Any]
Reply = dict[str, Any]


class QueryTimeout(Exception):
    """The query ran past its time limit and was abandoned (worker killed / request dropped)."""


class PoolBusy(Exception):
    """No worker (or remote connection slot) became free within the time limit."""


class WorkerDied(Exception):
    """A worker exited while running a job (e.g. out of memory)."""


class Executor(Protocol):
    @property
    def generation(self) -> int:
        """Bumped whenever the graph may have changed: caches are keyed on it."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def lease(self) -> Any:
        """A handle on the graph now being served (embedded: a worker generation)."""
        ...

    def pin(self, lease: Any) -> None:
        """Keep ``lease``'s graph alive for a request (released with ``unpin``)."""
        ...

    def unpin(self, lease: Any) -> None: ...

    async def run(self, job: Job, timeout: float, lease: Any = None) -> Reply:
        """Run a query/rows/dump job on ``lease``'s graph (default: the current one);
        raise QueryTimeout, PoolBusy or WorkerDied."""
        ...

    async def update(self, job: Job, timeout: float) -> Reply:
        """Apply an update job; afterwards ``generation`` has changed."""
        ...
