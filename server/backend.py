"""Server-side state: the executor (embedded workers or remote store), caches, names, counts.

Everything derived from one graph — its name index, counts, cache generation and the
executor's handle on it — is one immutable ``Graph``.  Each request is *pinned* to the
graph that was current when it arrived (``pinned()``, installed as middleware), so a
reload or an update never gives a request half of each graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from server import canned, processes, store, summary, workers
from server.executor import Executor, PoolBusy, QueryTimeout, Reply, WorkerDied
from server.remote import RemoteConfig, RemoteExecutor, probe, split_credentials

log = logging.getLogger("jiceng.server")
INTERNAL_TIMEOUT = 120.0  # start-up statistics, dumps: not user queries
MIN_TIMEOUT = 1.0  # a request's timeout= below this counts as this


class ServiceError(Exception):
    """Answer ``status`` with a one-line text message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Config:
    data: Path | None  # the dump (embedded backend); None with a remote store
    store_dir: Path | None = None
    update_token: str | None = None
    timeout: float = 10.0
    max_rows: int = 10000
    max_query_bytes: int = 64 * 1024
    workers: int = 2
    queries_dir: Path = canned.QUERIES_DIR
    resource_base: str = canned.RESOURCE_BASE
    remote: RemoteConfig | None = None  # set: --backend sparql
    refresh: float = 60.0  # remote only: re-read counts and names every N s (0: never)
    reload_dirs: list[Path] = field(default_factory=list)  # /admin/reload may load from here


@dataclass
class Cached:
    etag: str
    media_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


STATS_QUERIES = {
    "triples": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "entities": "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s ?p ?o FILTER(isIRI(?s)) }",
    "classes": "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?s a ?c }",
    "properties": "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE { ?s ?p ?o }",
    "ontology_triples": (
        "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <" + store.ONTOLOGY_GRAPH + "> { ?s ?p ?o } }"
    ),
}
CLASS_PARTITION = "SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?c } GROUP BY ?c ORDER BY ?c"
PROPERTY_PARTITION = "SELECT ?p (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?p ORDER BY ?p"


@dataclass(frozen=True)
class Graph:
    """One graph as requests see it: the executor's handle on it and what derives from it."""

    lease: Any  # the executor's generation (workers.Generation; None for a remote store)
    generation: int  # cache key
    index: canned.NameIndex
    stats: dict[str, int]
    class_partition: list[tuple[str, int]]
    property_partition: list[tuple[str, int]]
    data: Path | None = None  # the dump it was loaded from (embedded)
    dump_sha256: str = ""


_EMPTY = Graph(None, -1, canned.NameIndex([]), {}, [], [])
# The graph the running request is pinned to (unset: the current one).
_PINNED: ContextVar[Graph | None] = ContextVar("jiceng_pinned_graph", default=None)


class Backend:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.queries = canned.load_all(config.queries_dir)
        self.executor: Executor
        # Forked first, while this process is still single-threaded: every zygote (one
        # per loaded graph) is forked from it, now and at each reload.
        self.nursery = processes.Nursery()
        self.current = _EMPTY
        if config.remote is None:
            assert config.data is not None
            zygote = self.nursery.zygote(config.data, config.store_dir)  # StoreError: 1 line
            if config.store_dir is not None and zygote.disk_path is not None:
                store.prune(config.store_dir, zygote.disk_path)  # left by earlier builds
                summary.prune(config.store_dir, zygote.disk_path)
            self.executor = workers.Pool(zygote, config.workers)
            self.current = replace(_EMPTY, data=config.data, dump_sha256=zygote.dump_sha256)
        else:
            flavour = probe(config.remote)  # one-line RemoteError when unreachable
            self.executor = RemoteExecutor(config.remote, config.workers, flavour, self.nursery)
        self._refresher: asyncio.Task[None] | None = None
        self._change = asyncio.Lock()  # updates, reloads and refreshes, one at a time
        self._signal_reload_waiting = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cache = AnswerCache()
        # Run on each newly loaded embedded graph (not on a remote store's refreshes,
        # which would re-run them against someone else's server every minute).
        self.warmers: list[Callable[[Backend], Awaitable[None]]] = []

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        await self.executor.start()
        await self.refresh()
        self._warm()
        loop = asyncio.get_running_loop()
        if isinstance(self.executor, RemoteExecutor) and self.config.refresh > 0:
            self._refresher = loop.create_task(self._refresh_every())
        # SIGHUP: reload the dump (the usual daemon convention).  Only possible in the
        # main thread; an app embedded elsewhere has /admin/reload.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    async def close(self) -> None:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in [self._refresher, *self._tasks]:
            if task is not None:
                task.cancel()
        await self.executor.close()
        self.nursery.close()

    async def _refresh_every(self) -> None:
        """A remote store can change behind our back (``jiceng load``, other writers):
        drop cached answers and re-read names and counts now and then."""
        assert isinstance(self.executor, RemoteExecutor)
        while True:
            await asyncio.sleep(self.config.refresh)
            try:
                async with self._change:
                    self.executor.invalidate()
                    await self.refresh()
            except ServiceError as exc:
                log.warning("refreshing from the remote store failed: %s", exc.message)

    async def refresh(self) -> None:
        """Re-read what depends on the graph (after start-up, updates, remote changes)."""
        graph = await self._read_graph(self.executor.lease(), self.executor.generation)
        self.current = replace(graph, data=self.current.data, dump_sha256=self.current.dump_sha256)
        self._cache.clear()

    async def _read_graph(self, lease: Any, generation: int) -> Graph:
        """Name index, counts and partitions, read from the graph behind ``lease`` (or,
        for a disk store, from the summary saved beside it by an earlier start)."""
        db = _disk_path(lease)
        if db is None:
            return await self._query_graph(lease, generation)
        key = summary.key_for(
            lease.zygote.dump_sha256,
            canned.INDEX_QUERY, *STATS_QUERIES.values(), CLASS_PARTITION, PROPERTY_PARTITION,
            canned.index_version(),
        )  # fmt: skip
        saved = summary.load(summary.path_for(db), key)
        if saved is not None:
            return Graph(lease, generation, *saved)
        graph = await self._query_graph(lease, generation)
        parts = (graph.index, graph.stats, graph.class_partition, graph.property_partition)
        summary.save(summary.path_for(db), key, parts)
        return graph

    async def _query_graph(self, lease: Any, generation: int) -> Graph:
        token = _PINNED.set(replace(_EMPTY, lease=lease, generation=generation))
        self.executor.pin(lease)
        try:
            _, rows = await self.rows(canned.INDEX_QUERY, INTERNAL_TIMEOUT, max_rows=10**9)
            index = canned.NameIndex(rows)
            stats = {}
            for key, q in STATS_QUERIES.items():
                _, rows = await self.rows(q, INTERNAL_TIMEOUT)
                stats[key] = int(rows[0][0].value) if rows and rows[0][0] is not None else 0
            _, rows = await self.rows(CLASS_PARTITION, INTERNAL_TIMEOUT, max_rows=10**6)
            classes = [(r[0].value, int(r[1].value)) for r in rows if r[0] is not None]
            _, rows = await self.rows(PROPERTY_PARTITION, INTERNAL_TIMEOUT, max_rows=10**6)
            properties = [(r[0].value, int(r[1].value)) for r in rows]
        finally:
            self.executor.unpin(lease)
            _PINNED.reset(token)
        return Graph(lease, generation, index, stats, classes, properties)

    # -- the graph a request sees --------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Graph]:
        """Pin the current graph for the duration of a request: every query it runs,
        its name resolution and its cache entries come from that graph, and an old
        generation is retired only once no request is pinned to it."""
        graph = self.current
        self.executor.pin(graph.lease)
        token = _PINNED.set(graph)
        try:
            yield graph
        finally:
            _PINNED.reset(token)
            self.executor.unpin(graph.lease)

    @property
    def graph(self) -> Graph:
        return _PINNED.get() or self.current

    @property
    def index(self) -> canned.NameIndex:
        return self.graph.index

    @property
    def stats(self) -> dict[str, int]:
        return self.graph.stats

    @property
    def class_partition(self) -> list[tuple[str, int]]:
        return self.graph.class_partition

    @property
    def property_partition(self) -> list[tuple[str, int]]:
        return self.graph.property_partition

    @property
    def generation(self) -> int:
        return self.graph.generation

    # -- reloading -------------------------------------------------------------------

    def reload_target(self, given: str | None) -> Path | None:
        """The dump a reload may read: the one being served, or — given by the caller —
        the ``--data`` file or a file under a ``--reload-dir``, never anything else."""
        if not given:
            return self.current.data
        if self.config.remote is not None:
            raise ServiceError(400, "data: the remote backend serves a store, not a dump")
        path = Path(given).resolve()  # symlinks followed: the real file must be allowed
        allowed = {p.resolve() for p in (self.config.data, self.current.data) if p is not None}
        dirs = [d.resolve() for d in self.config.reload_dirs]
        if path in allowed or any(path.is_relative_to(d) for d in dirs):
            return path
        raise ServiceError(
            403, "data: only the --data file or a file under --reload-dir may be loaded"
        )

    async def reload(self, data: Path | None = None) -> dict[str, Any]:
        """Load ``data`` (default: the dump being served) as a new generation and switch
        to it without failing a request; on any error keep serving the old graph.

        A remote store has no dump: its names, counts and caches are re-read."""
        async with self._change:
            return await self._reload(data)

    async def _reload(self, data: Path | None) -> dict[str, Any]:
        started = time.monotonic()
        if isinstance(self.executor, RemoteExecutor):
            self.executor.invalidate()
            await self.refresh()
            return self._reloaded(started)
        pool = self.executor
        assert isinstance(pool, workers.Pool)
        path = data or self.current.data
        assert path is not None
        loop = asyncio.get_running_loop()
        try:
            zygote = await loop.run_in_executor(
                None, self.nursery.zygote, path, self.config.store_dir
            )
        except store.StoreError as exc:
            log.error("reload failed, still serving %s: %s", self.current.data, exc)
            raise ServiceError(
                422, f"reload failed, still serving the previous graph: {exc}"
            ) from None
        try:
            gen = await pool.prepare(zygote)
        except BaseException:
            zygote.close()
            raise
        try:
            graph = await self._read_graph(gen, pool.generation + 1)
        except BaseException as exc:
            gen.close()
            if isinstance(exc, ServiceError):
                log.error("reload failed, still serving %s: %s", self.current.data, exc.message)
            raise
        old_dir, new_dir = pool.current.zygote.disk_path, zygote.disk_path

        def retired() -> None:  # the old disk store, once no worker reads it any more
            if old_dir is not None and old_dir != new_dir:
                summary.forget(old_dir)
                loop.run_in_executor(None, shutil.rmtree, old_dir, True)

        # The switch: no await from here on, so no request sees one without the other.
        pool.switch(gen, retired)
        self.current = replace(
            graph, generation=pool.generation, data=path, dump_sha256=zygote.dump_sha256
        )
        self._cache.clear()
        self._warm()
        return self._reloaded(started)

    def _warm(self) -> None:
        if self.config.remote is not None:
            return
        loop = asyncio.get_running_loop()
        for warmer in self.warmers:
            task = loop.create_task(warmer(self))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _reloaded(self, started: float) -> dict[str, Any]:
        graph = self.current
        result = {
            "reloaded": str(graph.data) if graph.data else self._remote_url(),
            "triples": graph.stats.get("triples", 0),
            "generation": graph.generation,
            "seconds": round(time.monotonic() - started, 3),
        }
        if graph.dump_sha256:
            result["sha256"] = graph.dump_sha256
        log.info(
            "reloaded %s: %d triples in %.1f s",
            result["reloaded"],
            result["triples"],
            result["seconds"],
        )
        return result

    def _remote_url(self) -> str:
        assert self.config.remote is not None
        return split_credentials(self.config.remote.endpoint)[0]  # never echo a password

    def _on_sighup(self) -> None:
        if self._signal_reload_waiting:  # one queued reload reads the latest file anyway
            return
        self._signal_reload_waiting = True
        task = asyncio.get_running_loop().create_task(self._reload_on_signal())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_on_signal(self) -> None:
        async with self._change:
            self._signal_reload_waiting = False
            try:
                await self._reload(None)
            except ServiceError:
                pass  # logged; the old graph is still served
            except Exception as exc:  # a signal handler has no one to answer to
                log.error("reload failed, still serving %s: %s", self.current.data, exc)

    # -- running jobs ------------------------------------------------------------------

    def timeout_for(self, requested: str | None) -> float:
        """The server limit, lowered (never raised) by a request's ``timeout=`` seconds."""
        if requested in (None, ""):
            return self.config.timeout
        try:
            value = float(requested)
        except ValueError:
            raise ServiceError(
                400, f"timeout must be a number of seconds, not {requested!r}"
            ) from None
        if not value > 0:
            raise ServiceError(400, "timeout must be positive")
        # A floor: a client looping with timeout=0.001 would otherwise make the pool
        # kill and fork a worker per request.
        return min(max(value, MIN_TIMEOUT), self.config.timeout)

    async def run(self, job: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        limit = self.config.timeout if timeout is None else timeout
        reply = await _answered(self.executor.run(job, limit, self.graph.lease))
        if reply.get("status", 200) != 200:
            raise ServiceError(reply["status"], reply.get("error", "query failed"))
        return reply

    async def rows(
        self, query: str, timeout: float | None = None, max_rows: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        reply = await self.run(
            {"kind": "rows", "query": query, "max_rows": max_rows or self.config.max_rows}, timeout
        )
        return reply["vars"], reply["rows"]

    async def update(self, text: str) -> None:
        async with self._change:
            db = _disk_path(self.executor.lease())
            if db is not None:
                summary.forget(db)  # first: a crash mid-update must not leave it stale
            try:
                reply = await _answered(
                    self.executor.update({"kind": "update", "update": text}, self.config.timeout)
                )
            finally:
                await self.refresh()
                self._warm()
        if reply.get("status", 200) != 200:
            raise ServiceError(reply["status"], reply.get("error", "update failed"))

    # -- cache (keyed on the graph generation: updates and reloads start afresh) ----------

    def cache_get(self, key: tuple[Any, ...]) -> Cached | None:
        return self._cache.get((self.generation, *key))

    def cache_put(
        self, key: tuple[Any, ...], media_type: str, body: bytes, *, keep: bool = True,
        **headers: str,
    ) -> Cached:  # fmt: skip
        """The entry for an answer, kept for the next request unless ``keep`` is false."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        entry = Cached(etag, media_type, body, headers)
        if not keep or self.generation != self.current.generation:
            return entry  # varies per evaluation, or from a graph since replaced
        self._cache.put((self.generation, *key), entry)
        return entry


class AnswerCache:
    """Least recently used answers, at most ``entries`` of them and ``budget`` bytes."""

    def __init__(self, entries: int = 512, budget: int = 256 << 20) -> None:
        self._entries: OrderedDict[tuple[Any, ...], Cached] = OrderedDict()
        self._bytes = 0  # kept up to date: summing 512 bodies per answer showed in profiles
        self.max_entries, self.budget = entries, budget

    def get(self, key: tuple[Any, ...]) -> Cached | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: tuple[Any, ...], entry: Cached) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_entries or self._bytes > self.budget
        ):
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


def _disk_path(lease: Any) -> Path | None:
    """The RocksDB directory behind an embedded generation (None: in memory or remote)."""
    return lease.zygote.disk_path if isinstance(lease, workers.Generation) else None


async def _answered(call: Any) -> Reply:
    """Await an executor call, turning its exceptions into HTTP answers."""
    try:
        return await call
    except QueryTimeout as exc:
        raise ServiceError(503, f"{exc}; the query was stopped", {"Retry-After": "1"}) from None
    except PoolBusy as exc:
        raise ServiceError(503, f"server busy: {exc}", {"Retry-After": "1"}) from None
    except WorkerDied as exc:  # crashed or killed (out of memory): it has been replaced
        raise ServiceError(
            503, f"{exc}; it was replaced, try again", {"Retry-After": "1"}
        ) from None
