"""Hostile SPARQL and failing workers, against real servers on 127.0.0.1.

- SERVICE, FROM, GRAPH, DESCRIBE, LOAD naming a listener on 127.0.0.1: it gets no
  connection, whatever the spelling;
- deeply nested queries and 1 MB queries are refused with a 4xx, and unbracketed deep
  expressions (which overflowed the parser's stack) no longer kill a worker;
- a worker that dies, idle or mid-query, is replaced: the query it ran gets a 503, no
  other request fails;
- canned-query parameters made of quotes, brackets, newlines and SPARQL keywords
  (Hypothesis) answer exactly what the offline runner answers, and bound values stay
  data whatever they contain.
"""

from __future__ import annotations

import csv
import http.client
import io
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import canned, sparqltext
from server.offline import QueryError, load_store, run_canned
from tests.conftest import UPDATE_TOKEN, RunningServer
from tests.test_server_protocol import HEAVY, Listener

STREETS = "SELECT ?s WHERE { ?s a <https://w3id.org/jiceng/ontology#Street> } ORDER BY ?s"


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def _workers(server: RunningServer) -> list[int]:
    """The query workers: server → nursery → zygote → workers."""
    from tests.test_load_test import _tree

    def children(pid: int) -> list[int]:
        return [p for p in _tree(pid) if _ppid(p) == pid]

    (nursery,) = children(server.pid)
    zygotes = children(nursery)
    return [w for z in zygotes for w in children(z)]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@dataclass
class Raw:
    status_code: int
    text: str


def raw_get(base: str, target: str) -> Raw:
    """GET with a request line of any length (httpx refuses URLs over 64 KiB)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return Raw(response.status, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


_FRESH = itertools.count()


def _streets_ok(url: str) -> None:
    # A new comment each time: a new cache key, so the request really reaches a worker.
    query = f"{STREETS}\n# request {next(_FRESH)}"
    r = httpx.get(f"{url}/sparql", params={"query": query}, timeout=10)
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 2, r.text


# -- no outbound connections -------------------------------------------------------------------


QUERIES_NAMING_A_URL = [
    ("SELECT * WHERE {{ SERVICE ?ep {{ ?s ?p ?o }} VALUES ?ep {{ <{url}> }} }}", 400),
    ("SELECT * WHERE {{ SERVICE#comment\n<{url}> {{ ?s ?p ?o }} }}", 400),
    ("SELECT * WHERE {{ \\U00000053ERVICE <{url}> {{ ?s ?p ?o }} }}", 400),
    ("SELECT * WHERE {{ ?s ?p ?o }}\nSERVICE", 400),
    ("SELECT * WHERE {{ {{ ?s ?p ?o }} UNION {{ SERVICE SILENT <{url}> {{ ?s ?p ?o }} }} }}", 400),
    ("ASK FROM <{url}> WHERE {{ ?s ?p ?o }}", 200),
    ("CONSTRUCT {{ ?s ?p ?o }} FROM NAMED <{url}> WHERE {{ GRAPH <{url}> {{ ?s ?p ?o }} }}", 200),
    ("SELECT * WHERE {{ GRAPH <{url}> {{ ?s ?p ?o }} }}", 200),
    ("DESCRIBE <{url}>", 200),
    ('SELECT * WHERE {{ BIND(IRI("{url}") AS ?x) ?x ?p ?o }}', 200),
]


def test_queries_naming_a_listener_never_reach_it(client: httpx.Client, listener: Listener) -> None:
    for template, status in QUERIES_NAMING_A_URL:
        query = template.format(url=f"http://127.0.0.1:{listener.port}/sparql")
        for r in (
            client.get("/sparql", params={"query": query}),
            client.post(
                "/sparql",
                content=query.encode(),
                headers={"Content-Type": "application/sparql-query"},
            ),
        ):
            assert r.status_code == status, (query, r.text)
    updates = [
        "INSERT {{ <urn:x:a> <urn:x:b> ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        "DELETE {{ ?s ?p ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        "LOAD SILENT <{url}>",
        "LOAD <{url}> INTO GRAPH <urn:x:g>",
    ]
    for template in updates:
        update = template.format(url=f"http://127.0.0.1:{listener.port}/data")
        r = client.post(
            "/sparql", data={"update": update}, headers={"Authorization": f"Bearer {UPDATE_TOKEN}"}
        )
        assert r.status_code == 400, (update, r.text)
    listener.close()
    assert listener.connections == 0


# -- nesting and size --------------------------------------------------------------------------


def _nested_subselects(n: int) -> str:
    q = "SELECT * WHERE { ?s ?p ?o }"
    for _ in range(n):
        q = "SELECT * WHERE { { " + q + " } }"
    return q


DEEP = {
    "groups": "SELECT * WHERE " + "{ " * 5000 + "?s ?p ?o" + " }" * 5000,
    "subselects": _nested_subselects(500),
    "parentheses": "SELECT * WHERE { ?s ?p ?o FILTER(" + "(" * 5000 + "1" + ")" * 5000 + ") }",
    "blank nodes": "SELECT * WHERE { ?s <urn:p> " + "[ <urn:p> " * 2000 + "?o" + " ]" * 2000 + "}",
    "paths": "SELECT * WHERE { ?s " + "(" * 5000 + "<urn:p>" + ")" * 5000 + " ?o }",
    "unclosed": "SELECT * WHERE " + "{ " * 20000,
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_is_refused_and_the_workers_live(
    jiceng_server: RunningServer, client: httpx.Client, name: str
) -> None:
    workers = _workers(jiceng_server)
    query = DEEP[name]
    started = time.monotonic()
    responses = [
        client.post("/sparql", data={"query": query}),
        client.post(
            "/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"}
        ),
    ]
    target = "/sparql?" + urlencode({"query": query})
    if len(target) < 60_000:  # uvicorn's httptools parser refuses longer URLs itself
        responses.append(raw_get(jiceng_server.url, target))
    for r in responses:
        assert r.status_code == 400, r.text[:200]
        assert "nested" in r.text and "levels deep" in r.text
    assert time.monotonic() - started < 5
    r = client.post(
        "/sparql",
        data={"update": "INSERT { <urn:a> <urn:b> <urn:c> } WHERE " + "{ " * 5000 + " }" * 5000},
        headers={"Authorization": f"Bearer {UPDATE_TOKEN}"},
    )
    assert r.status_code == 400 and "nested" in r.text
    _streets_ok(jiceng_server.url)
    assert _workers(jiceng_server) == workers  # nothing crashed, nothing was replaced


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { ?s ?p ?o FILTER(" + "!" * 60000 + "true) } LIMIT 1",
        "SELECT * WHERE { ?s ?p ?o FILTER(" + "||".join(["true"] * 10000) + ") } LIMIT 1",
    ],
    ids=["not-chain", "or-chain"],
)
def test_deep_expressions_without_brackets_do_not_crash_a_worker(
    jiceng_server: RunningServer, client: httpx.Client, query: str
) -> None:
    # pyoxigraph recursed past the 8 MiB main-thread stack here (SIGSEGV); workers now
    # run jobs on a thread with a large stack.
    workers = _workers(jiceng_server)
    r = client.post(
        "/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    assert r.status_code == 200, r.text[:200]
    assert _workers(jiceng_server) == workers


def test_one_megabyte_queries_are_refused(
    jiceng_server: RunningServer, client: httpx.Client
) -> None:
    big = "SELECT * WHERE { ?s ?p ?o } #" + "x" * (1 << 20)
    # uvicorn refuses a request line over 256 KiB itself (400) and closes the connection;
    # a client still sending may see that as a reset instead.
    for target in (
        "/sparql?" + urlencode({"query": big}),
        "/queries/places.csv?" + urlencode({"within": "金水区" * 9**6}),
    ):
        try:
            assert 400 <= raw_get(jiceng_server.url, target).status_code < 500
        except ConnectionError:
            pass
    r = client.post("/sparql", data={"query": big})
    assert r.status_code == 413
    r = client.post(
        "/sparql", content=big.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    assert r.status_code == 413
    # a huge declared body is refused from its Content-Length, before it is read
    r = httpx.post(
        f"{jiceng_server.url}/sparql",
        content=iter([b"x" * 65536] * 160),  # 10 MiB, streamed
        headers={"Content-Type": "application/sparql-query", "Content-Length": str(10 << 20)},
        timeout=30,
    )
    assert r.status_code == 413
    _streets_ok(jiceng_server.url)


# -- dying workers ---------------------------------------------------------------------------


def test_a_worker_that_dies_is_replaced_and_no_other_request_fails(
    jiceng_server: RunningServer,
) -> None:
    url = jiceng_server.url
    workers = _workers(jiceng_server)
    os.kill(workers[0], signal.SIGKILL)  # an idle worker, e.g. the OOM killer's choice
    time.sleep(0.2)
    for _ in range(6):
        _streets_ok(url)  # never handed to the dead worker
    # A worker that crashes mid-query (as a parser stack overflow did): 503, then replaced.
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "r", httpx.get(f"{url}/sparql", params={"query": HEAVY}, timeout=30)
        )
    )
    thread.start()
    time.sleep(0.5)
    busy = [w for w in _workers(jiceng_server) if _cpu(w) > 0.2]
    assert busy, "the heavy query should keep one worker busy"
    os.kill(busy[0], signal.SIGSEGV)
    thread.join(timeout=20)
    r = result["r"]
    assert r.status_code == 503 and "worker died" in r.text and r.headers["retry-after"]
    for _ in range(6):
        _streets_ok(url)
    deadline = time.monotonic() + 5
    while len(_workers(jiceng_server)) != len(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_workers(jiceng_server)) == len(workers)


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- canned-query parameters -----------------------------------------------------------------

FRAGMENTS = [
    '"',
    "'",
    '"""',
    ">",
    "<",
    "}",
    "{",
    ")",
    "(",
    "\n",
    "\r\n",
    "\\",
    "\\u0022",
    "#",
    ".",
    ";",
    "?s",
    "$o",
    " UNION ",
    "SELECT * WHERE",
    "} ; DROP ALL ; {",
    "FILTER(true)",
    "SERVICE <http://127.0.0.1:9/>",
    "<https://w3id.org/jiceng/resource/district/jinshui-qu>",
    "res:street/huayuanlu-jiedao",
    "金水区",
    "金水",
    "花园路",
    "张三",
    "街道",
    "^^xsd:string",
    "@zh",
    " ",
    "\t",
    "\x00",
]
nasty = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map("".join),
    st.text(max_size=30),
)
PARAMS = [
    ("party-secretaries", "district"),
    ("party-secretaries", "unitType"),
    ("places", "within"),
    ("programmes", "adopter"),
    ("entity", "name"),
    ("evidence", "other"),
    ("statistics", "about"),
    ("temporary-party-branches", "district"),
]


@pytest.fixture(scope="module")
def sample_store(server_sample_ttl: Path) -> ox.Store:
    return load_store(server_sample_ttl)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.sampled_from(PARAMS), value=nasty)
def test_nasty_parameters_answer_what_the_offline_runner_answers(
    client: httpx.Client, sample_store: ox.Store, which: tuple[str, str], value: str
) -> None:
    name, param = which
    args = {param: value}
    if name == "evidence":
        args["name"] = "张三"
    r = client.get(f"/queries/{name}.csv", params=args)
    assert r.status_code in (200, 300, 400, 404), (r.status_code, r.text)
    try:
        expected = run_canned(sample_store, name, args, "csv")
    except QueryError:
        assert r.status_code != 200, r.text
        return
    assert r.status_code == 200, r.text
    assert list(csv.DictReader(io.StringIO(r.text))) == list(csv.DictReader(io.StringIO(expected)))


LITERAL_PARAMS = [
    canned.Param("v", "__v", kind, False) for kind in ("string", "zh", "en")
]  # free-text kinds: bound as literals, never resolved through the name index


@settings(max_examples=200, deadline=None)
@given(param=st.sampled_from(LITERAL_PARAMS), value=nasty)
def test_bound_values_stay_data(param: canned.Param, value: str) -> None:
    """Whatever a value holds, the bound query has the original's shape and binds the
    value itself: one row, that exact string."""
    try:
        term = canned._literal(param, value)
    except canned.CannedError:
        return
    text = "SELECT ?__v ?x WHERE { BIND(1 AS ?x) }"
    bound = sparqltext.inject_values(text, {param.var: term})
    (row,) = list(ox.Store().query(bound))
    assert row["__v"].value == value and row["x"].value == "1"
