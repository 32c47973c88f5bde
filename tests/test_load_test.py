"""Load: 10 000 mixed requests from 16 concurrent clients on loopback, on the real graph.

Lookups through ``/sparql`` (GET, form POST, direct POST), canned-query URLs with and
without parameters and with ``If-None-Match``, resource pages in HTML and Turtle, and a
few malformed queries.  Every response must have the status its request expects, the
whole run must finish well inside a minute, and the memory of the server's process tree
(uvicorn, nursery, zygote, workers: RSS from /proc) must stay flat.
"""

from __future__ import annotations

import http.client
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.conftest import RunningServer, start_server, stop_server

REQUESTS = 10_000
CLIENTS = 16
WARM_UP = 1_500  # the same mix first: workers touch their copy-on-write pages, caches fill
TIME_BUDGET = 30.0  # seconds for the 10 000 (about 12 s on two cores)
RES = "https://w3id.org/jiceng/resource/"
LOOKUP = "SELECT ?p ?o WHERE {{ <{iri}> ?p ?o }} LIMIT 50"
MALFORMED = ["SELECT ?s WHERE { ?s ?p }", "SELEKT * { ?s ?p ?o }", "ASK { ?s ?p ?o "]


@dataclass(frozen=True)
class Call:
    kind: str
    method: str
    url: str
    expect: int
    params: dict[str, str] | None = None
    data: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None


@pytest.fixture(scope="module")
def server(seed_dump: Path) -> Iterator[RunningServer]:
    running = start_server(seed_dump, ready_timeout=180)
    yield running
    stop_server(running)


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [pid], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass  # a worker replaced meanwhile
    return total


def plan(entities: list[str], etags: dict[str, str], n: int, seed: int) -> list[Call]:
    rng = random.Random(seed)
    canned = [
        ("/queries/places.csv", {}),
        ("/queries/party-secretaries.json", {}),
        ("/queries/temporary-party-branches.csv", {}),
        ("/queries/programmes.json", {}),
        ("/queries/statistics.csv", {}),
        ("/queries/party-secretaries.csv", {"unitType": "Street"}),
        ("/queries/places.json", {"within": "金水区"}),
        ("/queries/temporary-party-branches.json", {"district": "金水区"}),
    ]
    calls: list[Call] = []
    for _ in range(n):
        iri = rng.choice(entities)
        r = rng.random()
        if r < 0.25:
            q = LOOKUP.format(iri=iri)
            calls.append(Call("sparql-get", "GET", "/sparql", 200, params={"query": q}))
        elif r < 0.33:
            q = LOOKUP.format(iri=iri)
            calls.append(Call("sparql-form", "POST", "/sparql", 200, data={"query": q}))
        elif r < 0.40:
            body = LOOKUP.format(iri=iri).encode()
            headers = {"Content-Type": "application/sparql-query", "Accept": "text/csv"}
            calls.append(
                Call("sparql-direct", "POST", "/sparql", 200, content=body, headers=headers)
            )
        elif r < 0.60:
            path, params = rng.choice(canned)
            calls.append(Call("canned", "GET", path, 200, params=params))
        elif r < 0.72:
            path = rng.choice(sorted(etags))
            calls.append(
                Call("canned-304", "GET", path, 304, headers={"If-None-Match": etags[path]})
            )
        elif r < 0.84:
            calls.append(
                Call(
                    "resource-html",
                    "GET",
                    "/resource/" + iri[len(RES) :],
                    200,
                    headers={"Accept": "text/html"},
                )
            )
        elif r < 0.94:
            calls.append(Call("resource-ttl", "GET", "/resource/" + iri[len(RES) :] + ".ttl", 200))
        elif r < 0.97:
            calls.append(
                Call("malformed", "GET", "/sparql", 400, params={"query": rng.choice(MALFORMED)})
            )
        else:
            calls.append(Call("void", "GET", "/.well-known/void", 200))
    return calls


def fire(base: str, calls: list[Call]) -> tuple[Counter[str], list[str], float]:
    """Send ``calls`` from CLIENTS threads, each on its own keep-alive connection;
    (statuses seen, unexpected answers, seconds).

    Plain ``http.client`` threads: httpx's AsyncClient spends ~2 ms of CPU per request,
    which on a two-core machine measures the client rather than the server."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    todo: queue.SimpleQueue[Call] = queue.SimpleQueue()
    for c in calls:
        todo.put(c)
    seen: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            try:
                c = todo.get_nowait()
            except queue.Empty:
                break
            url = c.url + ("?" + urlencode(c.params) if c.params else "")
            headers = dict(c.headers or {})
            body = c.content
            if c.data is not None:
                body = urlencode(c.data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            try:
                conn.request(c.method, url, body=body, headers=headers)
                response = conn.getresponse()
                status, text = response.status, response.read()[:200]
            except (http.client.HTTPException, OSError) as exc:  # counted, not retried
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                status, text = -1, repr(exc).encode()
            with lock:
                seen[f"{c.kind} {status}"] += 1
                if status != c.expect:
                    failures.append(f"{c.kind} {url}: {status} {text!r}")
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen, failures, time.monotonic() - started


def test_ten_thousand_mixed_requests(server: RunningServer) -> None:
    base = server.url
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.get("/queries/places.json")
        entities = sorted({b["place"]["value"] for b in r.json()["results"]["bindings"]})
        r = c.get("/queries/party-secretaries.json")
        entities += sorted({b["person"]["value"] for b in r.json()["results"]["bindings"]})
        etags = {
            p: c.get(p).headers["etag"]
            for p in ("/queries/places.csv", "/queries/programmes.json", "/queries/statistics.csv")
        }
    assert len(entities) > 20 and all(e.startswith(RES) for e in entities)

    _, failures, _ = fire(base, plan(entities, etags, WARM_UP, seed=1))
    assert not failures, failures[:10]

    processes = len(_tree(server.pid))  # server, nursery, zygote, workers
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(tree_rss(server.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        calls = plan(entities, etags, REQUESTS, seed=2)
        seen, failures, seconds = fire(base, calls)
    finally:
        stop.set()
        sampler.join(timeout=5)
    samples.append(tree_rss(server.pid))

    assert not failures, f"{len(failures)} unexpected answers, e.g. {failures[:10]}"
    assert sum(seen.values()) == REQUESTS
    assert {k.split()[0] for k in seen} >= {
        "sparql-get",
        "canned-304",
        "resource-html",
        "malformed",
    }
    assert seconds < TIME_BUDGET, f"{REQUESTS} requests took {seconds:.1f} s"
    assert len(_tree(server.pid)) == processes  # no worker crashed or was killed
    first = max(samples[:3])
    last = max(samples[-3:])
    allowed = max(first * 0.10, 30 << 20)
    assert last <= first + allowed, (
        f"server tree RSS grew from {first >> 20} MiB to {last >> 20} MiB "
        f"({len(samples)} samples: {[s >> 20 for s in samples]})"
    )
    print(
        f"\n{REQUESTS} requests in {seconds:.1f} s ({REQUESTS / seconds:.0f}/s); "
        f"RSS {first >> 20} → {last >> 20} MiB; {dict(sorted(seen.items()))}"
    )
