"""The remote backend's limits and safety rules, against a scriptable fake endpoint (it
says it is Virtuoso, so the time limit is passed on as Virtuoso's ``timeout`` in ms)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.remote_stores import FakeEndpoint, Proc, jiceng_ready, start_jiceng

TOKEN = "remote-token-5678"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEndpoint]:
    endpoint = FakeEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def front(fake: FakeEndpoint, tmp_path_factory) -> Iterator[str]:
    p: Proc = start_jiceng(
        tmp_path_factory.mktemp("limits"),
        "--backend",
        "sparql",
        "--endpoint",
        fake.url + "/sparql",
        "--update-endpoint",
        fake.url + "/update",
        "--update-token",
        TOKEN,
        "--max-rows",
        "5",
        "--timeout",
        "3",
        "--refresh",
        "0",
    )
    try:
        jiceng_ready(p)
        yield p.url
    finally:
        p.stop()


def sparql(url: str, query: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/sparql", params={"query": query, **params}, timeout=30)


def test_row_limit_cuts_with_the_same_signal(front: str) -> None:
    r = sparql(front, "SELECT ?x WHERE { ?x ?p ?o } #rows:12")
    assert r.status_code == 200
    assert r.headers["x-jiceng-truncated"] == "true"
    doc = r.json()
    assert doc["truncated"] is True and len(doc["results"]["bindings"]) == 5
    r = sparql(front, "SELECT ?x WHERE { ?x ?p ?o } #rows:5")
    assert "x-jiceng-truncated" not in r.headers and "truncated" not in r.json()


def test_time_limit_is_passed_on_and_enforced_here(front: str, fake: FakeEndpoint) -> None:
    start = time.monotonic()
    r = sparql(front, "SELECT ?x WHERE { ?x ?p ?o } #slow", timeout="1")
    elapsed = time.monotonic() - start
    assert r.status_code == 503 and "time limit" in r.text
    assert r.headers["retry-after"] == "1"
    assert elapsed < 3  # the fake sleeps 4 s: the request was abandoned at 1 s
    sent = next(req for req in fake.requests if "#slow" in (req["params"].get("query") or [""])[0])
    assert 0 < int(sent["params"]["timeout"][0]) <= 1000  # Virtuoso's parameter, in ms
    # The server still answers afterwards.
    assert sparql(front, "ASK {}").json()["boolean"] is True


def test_remote_cut_by_its_own_limit_is_a_timeout(front: str) -> None:
    r = sparql(front, "SELECT ?x WHERE { ?x ?p ?o } #s1tat #rows:3")
    assert r.status_code == 503  # not three rows passed off as the whole answer


def test_refused_before_forwarding(front: str, fake: FakeEndpoint) -> None:
    cases = {
        "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } } #marker1": 400,
        'DEFINE get:soft "replace" SELECT * WHERE { ?s ?p ?o } #marker2': 400,
        "SELEC * WHERE { ?s ?p ?o } #marker3": 400,
        "SELECT * WHERE { ?s ?p ?o } #marker4" + "x" * 70000: 413,
    }
    for query, status in cases.items():
        r = httpx.post(f"{front}/sparql", data={"query": query}, timeout=30)
        assert r.status_code == status, (query[:40], r.text)
    assert not [q for q in fake.queries() if "#marker" in q]


def test_remote_failure_is_a_bad_gateway_with_its_message(front: str) -> None:
    r = sparql(front, "SELECT ?x WHERE { ?x ?p ?o } #fail")
    assert r.status_code == 502
    assert "500" in r.text and "Virtuoso 42000 Error: something broke" in r.text
    assert "more detail" not in r.text  # one line


def test_virtuoso_blank_node_labels_are_read(front: str) -> None:
    r = sparql(front, "SELECT ?x WHERE { ?x ?p ?o } #bnode")
    assert r.status_code == 200
    (binding,) = r.json()["results"]["bindings"]
    assert binding["x"]["type"] == "bnode"


def test_update_needs_the_token_and_goes_to_the_update_endpoint(
    front: str, fake: FakeEndpoint
) -> None:
    update = "INSERT DATA { <urn:a> <urn:b> <urn:c> }"
    assert httpx.post(f"{front}/sparql", data={"update": update}).status_code == 403
    assert not [r for r in fake.requests if r["path"] == "/update"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{front}/sparql", data={"update": update}, headers=auth, timeout=30)
    assert r.status_code == 204
    (sent,) = [r for r in fake.requests if r["path"] == "/update"]
    assert sent["body"].decode() == update
    assert sent["headers"]["Content-Type"] == "application/sparql-update"
    for bad in ("LOAD <http://example.org/x.ttl>", "INSERT DATA { <urn:a> <urn:b> }"):
        r = httpx.post(f"{front}/sparql", data={"update": bad}, headers=auth, timeout=30)
        assert r.status_code == 400
    assert len([r for r in fake.requests if r["path"] == "/update"]) == 1


def _serve(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kg.cli", "serve", "--port", str(free_port()), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "http://127.0.0.1:{port}/sparql"], "cannot reach the SPARQL endpoint"),
        (["--endpoint", "{fake}/sparql", "--update-token", "t"], "needs --update-endpoint"),
        ([], "needs --endpoint"),
    ],
)
def test_unusable_remote_is_one_line_and_exit_2(
    fake: FakeEndpoint, args: list[str], message: str
) -> None:
    args = [a.format(port=free_port(), fake=fake.url) for a in args]
    r = _serve("--backend", "sparql", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
