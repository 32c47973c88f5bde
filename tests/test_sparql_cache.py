"""/sparql answers are cached per graph generation and served without the framework
(``server/answered.py``): same bytes and headers as a computed answer, never stale."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, start_server, stop_server
from tests.test_server_protocol import _descendants

TOKEN = "cache-token"
JC = "https://w3id.org/jiceng/ontology#"
STREETS = f"SELECT ?s WHERE {{ ?s a <{JC}Street> }} ORDER BY ?s"


@pytest.fixture
def server(server_sample_ttl: Path) -> Iterator[RunningServer]:
    # Its own server: the tests update the graph and stop its workers.
    running = start_server(server_sample_ttl, token=TOKEN)
    yield running
    stop_server(running)


def _send(c: httpx.Client, how: str, query: str, **headers: str) -> httpx.Response:
    if how == "get":
        return c.get("/sparql", params={"query": query}, headers=headers)
    if how == "form":
        return c.post("/sparql", data={"query": query}, headers=headers)
    headers["Content-Type"] = "application/sparql-query"
    return c.post("/sparql", content=query.encode(), headers=headers)


def _comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in r.headers.items() if k != "date")
    return r.status_code, r.content, headers


@pytest.mark.parametrize("how", ["get", "form", "direct"])
@pytest.mark.parametrize("origin", [None, "http://notebook.example"])
def test_cached_answer_is_the_computed_one(server: RunningServer, how: str, origin: str | None):
    headers = {"Origin": origin} if origin else {}
    query = f"{STREETS} # {how} {origin}"  # a text of its own: the first one is computed
    with httpx.Client(base_url=server.url, timeout=10) as c:
        first = _send(c, how, query, **headers)
        second = _send(c, how, query, **headers)
        assert first.status_code == 200 and "huayuanlu-jiedao" in first.text
        assert _comparable(second) == _comparable(first)
        if origin:
            assert second.headers["access-control-allow-origin"] == "*"
        etag = first.headers["etag"]
        r = _send(c, how, query, **headers, **{"If-None-Match": etag})
        assert r.status_code == 304 and not r.content and r.headers["etag"] == etag
        r = _send(c, how, query, **headers, **{"Accept": "text/csv"})  # another answer
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")


def test_cached_answer_needs_no_worker(server: RunningServer) -> None:
    """With every query process stopped, a cached answer still arrives; a new query waits."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert _send(c, "direct", STREETS).status_code == 200
        stopped = _descendants(server.pid)
        assert stopped
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            for how in ("get", "form", "direct"):
                assert _send(c, how, STREETS).status_code == 200
            with pytest.raises(httpx.TimeoutException):
                r = c.get("/sparql", params={"query": STREETS + " LIMIT 1"}, timeout=3)
                print(r.status_code, r.text)  # shown when the test fails
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)


def test_parameters_are_still_checked_on_cached_queries(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/sparql", params={"query": STREETS}).status_code == 200
        r = c.get("/sparql", params={"query": STREETS, "timeout": "soon"})
        assert r.status_code == 400 and "timeout" in r.text
        r = c.get("/sparql", params={"query": STREETS, "default-graph-uri": "not an iri"})
        assert r.status_code == 400
        r = c.get("/sparql", params=[("query", STREETS), ("query", STREETS)])
        assert r.status_code == 400 and "more than one" in r.text
        r = c.post("/sparql", data={"query": STREETS, "update": "CLEAR ALL"})
        assert r.status_code == 400


def test_an_update_is_seen_at_once(server: RunningServer) -> None:
    ask = "ASK { <urn:new> <urn:p> <urn:o> }"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for how in ("get", "form", "direct"):
            assert _send(c, how, ask).json()["boolean"] is False
        r = c.post("/sparql", data={"update": "INSERT DATA { <urn:new> <urn:p> <urn:o> }"},
                   headers=auth)  # fmt: skip
        assert r.status_code == 204
        for how in ("get", "form", "direct"):
            assert _send(c, how, ask).json()["boolean"] is True


def test_volatile_queries_are_evaluated_each_time(server: RunningServer) -> None:
    query = "SELECT (STRUUID() AS ?u) WHERE {}"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        answers = {_send(c, "get", query).json()["results"]["bindings"][0]["u"]["value"]
                   for _ in range(3)}  # fmt: skip
    assert len(answers) == 3


def test_answer_cache_bounds() -> None:
    from server.backend import AnswerCache, Cached

    def entry(n: int) -> Cached:
        return Cached('"e"', "text/plain", b"x" * n)

    cache = AnswerCache(entries=3, budget=100)
    for k in "abc":
        cache.put((k,), entry(10))
    assert cache.get(("a",)) is not None  # now the most recently used
    cache.put(("d",), entry(10))  # over 3 entries: the least recently used goes
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None
    cache.put(("c",), entry(85))  # replaced, not added: 10 + 10 + 85 > 100
    assert [k for k in "abcd" if cache.get((k,))] == ["a", "c"]  # d, least recent, went
    cache.put(("big",), entry(500))  # one answer over the budget is still kept alone
    assert cache.get(("big",)) is not None and cache.get(("c",)) is None


def _answered_without_workers(server: RunningServer, paths: list[str]) -> bool:
    """Whether every path answers 200 while all query processes are stopped."""
    stopped = _descendants(server.pid)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=server.url, timeout=1) as c:
            return all(c.get(path).status_code == 200 for path in paths)
    except httpx.TimeoutException:
        return False
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def test_canned_answers_are_ready_before_the_first_request(server: RunningServer) -> None:
    """Each canned query without required parameters is answered at start-up and again
    after each update, in JSON, CSV and TSV: its first request needs no worker."""
    import time

    from server import canned

    names = [q.name for q in canned.load_all(canned.QUERIES_DIR).values()
             if not any(p.required for p in q.params)]  # fmt: skip
    assert "temporary-party-branches" in names and "entity" not in names
    paths = [f"/queries/{n}.{ext}" for n in names for ext in ("json", "csv", "tsv")]
    deadline = time.monotonic() + 15
    while not _answered_without_workers(server, paths):
        assert time.monotonic() < deadline, "canned answers were not computed ahead"
        time.sleep(0.5)
    # A query with a parameter is not computed ahead.
    assert not _answered_without_workers(server, ["/queries/places.json?within=金水区"])
    r = httpx.post(
        server.url + "/sparql",
        data={"update": "INSERT DATA { <urn:x> a <https://w3id.org/jiceng/ontology#Street> }"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 204
    deadline = time.monotonic() + 15
    while not _answered_without_workers(server, paths):
        assert time.monotonic() < deadline, "not computed ahead again after the update"
        time.sleep(0.5)
    assert "urn:x" in httpx.get(server.url + "/queries/places.csv").text
