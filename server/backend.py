"""Server-side state: the executor (embedded workers or remote store), caches, names, counts."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server import canned, store, workers
from server.executor import Executor, PoolBusy, QueryTimeout, Reply, WorkerDied
from server.remote import RemoteConfig, RemoteExecutor, probe

log = logging.getLogger("jiceng.server")
INTERNAL_TIMEOUT = 120.0  # start-up statistics, dumps: not user queries


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


class Backend:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.queries = canned.load_all(config.queries_dir)
        self.executor: Executor
        self.dump_sha256: str | None = None
        if config.remote is None:
            assert config.data is not None
            loaded = store.load(config.data, config.store_dir)
            self.dump_sha256 = loaded.dump_sha256
            # Fork the zygote now, while this process is still single-threaded.
            self.executor = workers.Pool(workers.Zygote(loaded.store, loaded.path), config.workers)
            del loaded
        else:
            flavour = probe(config.remote)  # one-line RemoteError when unreachable
            self.executor = RemoteExecutor(config.remote, config.workers, flavour)
        self._refresher: asyncio.Task[None] | None = None
        self.index = canned.NameIndex([])
        self.stats: dict[str, int] = {}
        self.class_partition: list[tuple[str, int]] = []
        self.property_partition: list[tuple[str, int]] = []
        self._cache: OrderedDict[tuple[Any, ...], Cached] = OrderedDict()

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        await self.executor.start()
        await self.refresh()
        if isinstance(self.executor, RemoteExecutor) and self.config.refresh > 0:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_every())

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await self.executor.close()

    async def _refresh_every(self) -> None:
        """A remote store can change behind our back (``jiceng load``, other writers):
        drop cached answers and re-read names and counts now and then."""
        assert isinstance(self.executor, RemoteExecutor)
        while True:
            await asyncio.sleep(self.config.refresh)
            self.executor.invalidate()
            try:
                await self.refresh()
            except ServiceError as exc:
                log.warning("refreshing from the remote store failed: %s", exc.message)

    async def refresh(self) -> None:
        """Recompute what depends on the graph (after start-up and after updates)."""
        self._cache.clear()
        _, rows = await self.rows(canned.INDEX_QUERY, INTERNAL_TIMEOUT, max_rows=10**9)
        self.index = canned.NameIndex(rows)
        stats = {}
        for key, q in STATS_QUERIES.items():
            _, rows = await self.rows(q, INTERNAL_TIMEOUT)
            stats[key] = int(rows[0][0].value) if rows and rows[0][0] is not None else 0
        self.stats = stats
        _, rows = await self.rows(CLASS_PARTITION, INTERNAL_TIMEOUT, max_rows=10**6)
        self.class_partition = [(r[0].value, int(r[1].value)) for r in rows if r[0] is not None]
        _, rows = await self.rows(PROPERTY_PARTITION, INTERNAL_TIMEOUT, max_rows=10**6)
        self.property_partition = [(r[0].value, int(r[1].value)) for r in rows]

    @property
    def generation(self) -> int:
        return self.executor.generation

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
        return min(value, self.config.timeout)

    async def run(self, job: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        limit = self.config.timeout if timeout is None else timeout
        reply = await _answered(self.executor.run(job, limit))
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
        try:
            reply = await _answered(
                self.executor.update({"kind": "update", "update": text}, self.config.timeout)
            )
        finally:
            await self.refresh()
        if reply.get("status", 200) != 200:
            raise ServiceError(reply["status"], reply.get("error", "update failed"))

    # -- cache (the graph only changes on update, which bumps the generation) -------------

    def cache_get(self, key: tuple[Any, ...]) -> Cached | None:
        hit = self._cache.get((self.generation, *key))
        if hit is not None:
            self._cache.move_to_end((self.generation, *key))
        return hit

    def cache_put(
        self, key: tuple[Any, ...], media_type: str, body: bytes, **headers: str
    ) -> Cached:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        entry = Cached(etag, media_type, body, headers)
        self._cache[(self.generation, *key)] = entry
        size = sum(len(c.body) for c in self._cache.values())
        while len(self._cache) > 1 and (len(self._cache) > 512 or size > 256 << 20):
            _, old = self._cache.popitem(last=False)
            size -= len(old.body)
        return entry


async def _answered(call: Any) -> Reply:
    """Await an executor call, turning its exceptions into HTTP answers."""
    try:
        return await call
    except QueryTimeout as exc:
        raise ServiceError(503, f"{exc}; the query was stopped", {"Retry-After": "1"}) from None
    except PoolBusy as exc:
        raise ServiceError(503, f"server busy: {exc}", {"Retry-After": "1"}) from None
    except WorkerDied as exc:
        raise ServiceError(500, str(exc)) from None
