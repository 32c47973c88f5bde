"""The remote backend: the same jobs, answered by any SPARQL 1.1 store over HTTP.

``jiceng serve --backend sparql --endpoint URL`` puts Virtuoso, Fuseki, QLever, an
Oxigraph server or a managed service behind the same ``/sparql``, canned queries and
pages.  Each job is

1. checked by a small pool of forked worker processes holding an *empty* pyoxigraph
   store (``jobs.run_check``): the remote receives only standard SPARQL that the
   embedded store would accept, with the same 400 messages, and the check itself is
   killed if it overruns (an ASK over VALUES alone can be costly);
2. forwarded over HTTP asking for SPARQL JSON results or N-Triples, with the time
   limit passed on where the store's parameter is known (Virtuoso, Fuseki) and
   enforced here all the same (request abandoned → ``QueryTimeout`` → 503);
3. parsed back into pyoxigraph terms and serialised by ``jobs.answer`` exactly as the
   embedded backend does (formats, row limit, truncation flag).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pyoxigraph as ox

from server import jobs, processes, results, sparqltext, workers
from server.executor import Job, PoolBusy, QueryTimeout, Reply
from server.offline import QueryError

ACCEPT_RESULTS = "application/sparql-results+json"
ACCEPT_GRAPH = "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5"
RDF_MEDIA = {
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "text/plain": ox.RdfFormat.N_TRIPLES,  # Virtuoso and older stores
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/x-turtle": ox.RdfFormat.TURTLE,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/n-quads": ox.RdfFormat.N_QUADS,
}
RESULTS_MEDIA = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
}
# Per-request time-limit parameters of stores we know, told apart by their Server header.
# (Units differ: a generic "timeout=10" would mean 10 ms to Virtuoso.)
TIMEOUT_PARAMS: dict[str, Callable[[float], tuple[str, str]]] = {
    "virtuoso": lambda s: ("timeout", str(max(int(s * 1000), 1))),
    "fuseki": lambda s: ("timeout", f"{s:.3f}"),
}


class RemoteError(QueryError):
    """The remote store cannot be used (one line, user-facing)."""


class _Failed(Exception):
    """A request that got no usable answer (unreachable, too large): 502 with this text."""


@dataclass
class RemoteConfig:
    endpoint: str  # SPARQL 1.1 query endpoint
    update_endpoint: str | None = None  # SPARQL 1.1 update endpoint (with --update-token)
    graph_store: str | None = None  # SPARQL 1.1 Graph Store Protocol endpoint (dumps)
    default_graph: str | None = None  # the remote graph holding the dump (Virtuoso)
    connections: int = 16  # requests in flight to the remote at once
    max_response_bytes: int = 256 << 20  # a larger answer is refused, not buffered


def split_credentials(url: str) -> tuple[str, httpx.Auth | None]:
    """``http://user:pass@host/…`` → the URL without them, and an auth that answers
    whichever challenge (Basic or Digest) the store sends."""
    parts = urlsplit(url)
    if not parts.username:
        return url, None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, ChallengeAuth(parts.username, parts.password or "")


class ChallengeAuth(httpx.Auth):
    """Send no credentials until asked, then Basic or Digest as the 401 says."""

    def __init__(self, user: str, password: str) -> None:
        self.basic = httpx.BasicAuth(user, password)
        self.digest = httpx.DigestAuth(user, password)

    def auth_flow(self, request: httpx.Request):
        response = yield request
        if response.status_code != 401:
            return
        scheme = response.headers.get("www-authenticate", "").split(" ", 1)[0].lower()
        if scheme == "digest":
            flow = self.digest.auth_flow(request)
            next(flow)  # the unauthenticated request, already sent
            try:
                request = flow.send(response)
            except StopIteration:
                return
            yield request
        elif scheme == "basic":
            yield next(self.basic.auth_flow(request))


def first_line(text: str, limit: int = 300) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def probe(config: RemoteConfig, timeout: float = 10.0) -> str:
    """Ask the endpoint ``ASK {}`` once; return its flavour ("virtuoso", "fuseki", "").

    Raises RemoteError with one line when it cannot be reached or does not answer.
    """
    url, auth = split_credentials(config.endpoint)
    try:
        r = httpx.post(
            url,
            data={"query": "ASK {}"},
            headers={"Accept": ACCEPT_RESULTS},
            auth=auth,
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise RemoteError(f"{url}: cannot reach the SPARQL endpoint: {exc}") from None
    if r.status_code != 200:
        raise RemoteError(
            f"{url}: the SPARQL endpoint answered {r.status_code}: {first_line(r.text)}"
        )
    server = r.headers.get("server", "").lower()
    return next((name for name in TIMEOUT_PARAMS if name in server), "")


def _bnode_id(value: str) -> str:
    # Virtuoso labels blank nodes "nodeID://b123", which is not a valid blank node id.
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value) and not value.endswith("."):
        return value
    return "b" + hashlib.sha1(value.encode()).hexdigest()[:16]


def _clean_json(body: bytes) -> bytes:
    doc = json.loads(body)

    def fix(term: dict[str, Any]) -> None:
        if term.get("type") == "bnode":
            term["value"] = _bnode_id(str(term.get("value", "")))
        elif term.get("type") == "triple":
            for part in (term.get("value") or {}).values():
                if isinstance(part, dict):
                    fix(part)

    for binding in (doc.get("results") or {}).get("bindings") or []:
        for term in binding.values():
            fix(term)
    return json.dumps(doc).encode()


def parse_results(media: str, body: bytes) -> Any:
    """A remote answer → QuerySolutions / QueryBoolean, or a list of triples."""
    if media in RESULTS_MEDIA:
        fmt = RESULTS_MEDIA[media]
        if fmt == ox.QueryResultsFormat.JSON and b'"bnode"' in body:
            body = _clean_json(body)
        return ox.parse_query_results(body, format=fmt)
    if media in RDF_MEDIA:
        return [q.triple for q in ox.parse(body, format=RDF_MEDIA[media])]
    raise ValueError(f"unexpected Content-Type {media or '(none)'}")


class RemoteExecutor:
    """``Executor`` over HTTP (see ``executor.py``)."""

    def __init__(
        self, config: RemoteConfig, checkers: int, flavour: str, nursery: processes.Nursery
    ) -> None:
        self.config = config
        self.flavour = flavour
        self._generation = 0
        # Checkers: workers holding an empty store, forked like the embedded backend's.
        self._checks = workers.Pool(nursery.zygote(None), checkers)
        self._slots = asyncio.Semaphore(config.connections)
        self._client: httpx.AsyncClient | None = None
        self._endpoint, self._auth = split_credentials(config.endpoint)
        self._update_url, self._update_auth = (
            split_credentials(config.update_endpoint) if config.update_endpoint else (None, None)
        )
        self._gsp_url, self._gsp_auth = (
            split_credentials(config.graph_store) if config.graph_store else (None, None)
        )

    @property
    def generation(self) -> int:
        return self._generation

    def lease(self) -> None:
        return None  # one store, changed in place: nothing to pin

    def pin(self, lease: Any) -> None:
        pass

    def unpin(self, lease: Any) -> None:
        pass

    def invalidate(self) -> None:
        """The remote may have changed behind our back (a load, another writer)."""
        self._generation += 1

    async def start(self) -> None:
        await self._checks.start()
        limits = httpx.Limits(max_connections=self.config.connections)
        self._client = httpx.AsyncClient(limits=limits, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await self._checks.close()

    # -- jobs ------------------------------------------------------------------------------

    async def run(self, job: Job, timeout: float, lease: Any = None) -> Reply:
        try:
            return await self._run(job, timeout)
        except _Failed as exc:
            return {"status": 502, "error": str(exc)}

    async def update(self, job: Job, timeout: float) -> Reply:
        try:
            return await self._update(job, timeout)
        except _Failed as exc:
            return {"status": 502, "error": str(exc)}

    async def _run(self, job: Job, timeout: float) -> Reply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if job["kind"] == "dump":
            return await self._dump(job, timeout)
        check = await self._checks.run({**job, "kind": "check"}, timeout)
        if check["status"] != 200:
            return check
        form = sparqltext.query_form(job["query"]) or "SELECT"
        data: list[tuple[str, str]] = [("query", job["query"]), *self._dataset(job)]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise QueryTimeout(f"query exceeded the time limit of {timeout:g} s")
        limit_param = TIMEOUT_PARAMS.get(self.flavour)
        if limit_param is not None:
            data.append(limit_param(remaining))
        accept = ACCEPT_RESULTS if form in ("SELECT", "ASK") else ACCEPT_GRAPH
        status, media, body = await self._send(
            "POST",
            self._endpoint,
            self._auth,
            remaining,
            content=_form(data),
            headers=_headers(accept),
        )
        if status != 200:
            return _error(status, body)
        try:
            result = parse_results(media, body)
        except (SyntaxError, ValueError) as exc:
            return {"status": 502, "error": f"unreadable answer from the remote store: {exc}"}
        if job["kind"] == "rows":
            return jobs.solutions(result, job)
        return jobs.answer(result, job)

    async def _update(self, job: Job, timeout: float) -> Reply:
        if self._update_url is None:
            return {"status": 403, "error": "SPARQL Update is disabled on this server"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        check = await self._checks.run({"kind": "check", "update": job["update"]}, timeout)
        if check["status"] != 200:
            return check
        try:
            status, _media, body = await self._send(
                "POST",
                self._update_url,
                self._update_auth,
                deadline - loop.time(),
                content=job["update"].encode(),
                headers={"Content-Type": "application/sparql-update"},
            )
        finally:
            self._generation += 1  # even on failure: the remote state is unknown
        return {"status": 200} if 200 <= status < 300 else _error(status, body)

    def _dataset(self, job: Job) -> list[tuple[str, str]]:
        dg, ng = job.get("default_graph"), job.get("named_graphs")
        if dg is not None or ng is not None:  # the client chose graphs of the store
            return [("default-graph-uri", g) for g in dg or []] + [
                ("named-graph-uri", g) for g in ng or []
            ]
        graph = self.config.default_graph
        if graph and not sparqltext.mentions_keyword(job["query"], "FROM"):
            return [("default-graph-uri", graph)]
        return []

    async def _dump(self, job: Job, timeout: float) -> Reply:
        """The graph that holds the dump, by the Graph Store Protocol when given, else
        by CONSTRUCT; serialised here (prefixes, formats) as the embedded store does."""
        graph = self.config.default_graph
        if self._gsp_url is not None:
            params = {"graph": graph} if graph else {"default": ""}
            status, media, body = await self._send(
                "GET",
                self._gsp_url,
                self._gsp_auth,
                timeout,
                params=params,
                headers={"Accept": ACCEPT_GRAPH},
            )
        else:
            data = [("query", "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")]
            if graph:
                data.append(("default-graph-uri", graph))
            status, media, body = await self._send(
                "POST", self._endpoint, self._auth, timeout, content=_form(data), headers=_headers()
            )
        if status != 200:
            return _error(status, body)
        try:
            triples = parse_results(media, body)
        except (SyntaxError, ValueError) as exc:
            return {"status": 502, "error": f"unreadable dump from the remote store: {exc}"}
        return {"status": 200, "body": results.triples(job["format"], triples)}

    # -- HTTP ------------------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, auth: httpx.Auth | None, timeout: float, **kwargs: Any
    ) -> tuple[int, str, bytes]:
        """One request under the time limit: (status, media type, body).

        Waiting for a connection slot counts against the limit; a timeout anywhere
        raises QueryTimeout (the request is dropped), no free slot in time PoolBusy.
        """
        assert self._client is not None, "start() first"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(self._slots.acquire(), max(timeout, 0.001))
        except TimeoutError:
            raise PoolBusy(f"all remote connections stayed busy for {timeout:g} s") from None
        try:
            remaining = max(deadline - loop.time(), 0.001)
            return await asyncio.wait_for(
                self._request(method, url, auth, remaining, **kwargs), remaining
            )
        except (TimeoutError, httpx.TimeoutException):
            raise QueryTimeout(f"query exceeded the time limit of {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _Failed(f"cannot reach the remote store {url}: {exc}") from None
        finally:
            self._slots.release()

    async def _request(
        self, method: str, url: str, auth: httpx.Auth | None, timeout: float, **kwargs: Any
    ) -> tuple[int, str, bytes]:
        assert self._client is not None
        request = self._client.build_request(method, url, timeout=timeout, **kwargs)
        response = await self._client.send(request, auth=auth, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.config.max_response_bytes:
                    raise _Failed(
                        f"the remote store's answer is over {self.config.max_response_bytes} bytes"
                    )
        finally:
            await response.aclose()
        # Virtuoso cut by its own time limit: partial results flagged only in a header.
        if response.headers.get("x-sql-state", "").upper() == "S1TAT":
            raise QueryTimeout("the remote store stopped the query at its time limit")
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        return response.status_code, media, bytes(body)


def _form(pairs: list[tuple[str, str]]) -> bytes:
    # Encoded here: repeated keys (default-graph-uri) keep their order.
    return urlencode(pairs).encode()


def _headers(accept: str = ACCEPT_GRAPH) -> dict[str, str]:
    return {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}


def _error(status: int, body: bytes) -> Reply:
    message = first_line(body.decode("utf-8", "replace")) or "no message"
    if status == 400:  # the query passed our parser but not the store's
        return {"status": 400, "error": f"the remote store refused the query: {message}"}
    return {"status": 502, "error": f"the remote store answered {status}: {message}"}
