"""Reloading a new dump under load: SIGHUP and ``POST /admin/reload``.

Two versions of the fixture graph, A and B, differ in a marker triple, their size and
the IRI of 花园路街道 (so a canned query that resolves the name in one graph and runs
in the other would come back empty).  Client threads hammer canned queries, ``/sparql``
and conditional requests while the server is reloaded again and again; every answer
must be 200/304 and come entirely from A or entirely from B.  A corrupt dump keeps the
old graph in service.  Loopback only; the servers are ``jiceng serve`` processes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from server.offline import load_store, run_canned
from tests.conftest import FIXTURES, ROOT
from tests.remote_stores import FakeEndpoint, Proc, jiceng_ready, start_jiceng
from tests.test_load_test import _tree

TOKEN = "reload-token-9012"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VERSION = (
    "SELECT ?v ?n WHERE { <urn:test:version> <urn:test:is> ?v "
    "{ SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o } } }"
)
SLOW = (
    "SELECT ?v (COUNT(*) AS ?n) WHERE { <urn:test:version> <urn:test:is> ?v . "
    "?a ?b ?c . ?d ?e ?f . ?g ?h ?i } GROUP BY ?v"
)
CANNED = [  # (path, params): answers differ between A and B
    ("/queries/places.csv", {"within": "花园路街道"}),
    ("/queries/places.csv", {}),
    ("/queries/temporary-party-branches.csv", {"district": "金水区"}),
]


def write_versions(directory: Path) -> tuple[Path, Path]:
    """A: the fixture graph + marker "A"; B: 花园路街道 renamed, marker "B", one more triple."""
    text = (FIXTURES / "server_sample.ttl").read_text("utf-8")
    a = directory / "a.ttl"
    a.write_text(text + '\n<urn:test:version> <urn:test:is> "A" .\n', "utf-8")
    b_text = re.sub(r"street\\/huayuanlu-jiedao(?![\w-])", r"street\\/huayuanlu-jiedao-v2", text)
    b = directory / "b.ttl"
    b.write_text(
        b_text + '\n<urn:test:version> <urn:test:is> "B" .\n<urn:test:b> <urn:test:b> "b" .\n',
        "utf-8",
    )
    return a, b


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@dataclass
class Expected:
    """What each version answers, computed offline with the same canned-query code."""

    counts: dict[str, int]
    canned: dict[str, dict[int, list[dict[str, str]]]] = field(default_factory=dict)

    @classmethod
    def of(cls, versions: dict[str, Path]) -> Expected:
        counts, canned = {}, {}
        for name, path in versions.items():
            store = load_store(path)
            counts[name] = int(next(iter(store.query(VERSION)))["n"].value)
            for i, (url, params) in enumerate(CANNED):
                query = url.removeprefix("/queries/").removesuffix(".csv")
                canned.setdefault(name, {})[i] = rows(run_canned(store, query, params, "csv"))
        assert canned["A"] != canned["B"] and counts["A"] != counts["B"]
        return cls(counts, canned)


class Hammer:
    """Client threads that keep querying and check every answer against A and B."""

    def __init__(self, url: str, expected: Expected, threads: int = 4) -> None:
        self.url = url
        self.expected = expected
        self.errors: list[str] = []
        self.seen: dict[str, int] = {"A": 0, "B": 0, "304": 0}
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.get("/queries/places.csv")
            self.etag = r.headers["etag"]  # of whichever version is served now
            self.etag_rows = rows(r.text)
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self._threads:
            t.start()

    def _which(self, check: Callable[[str], bool]) -> str | None:
        return next((v for v in ("A", "B") if check(v)), None)

    def _one(self, c: httpx.Client, i: int) -> str:
        kind = i % 4
        if kind == 0:  # /sparql, GET or POST: marker and size from the same graph
            r = (
                c.get("/sparql", params={"query": VERSION})
                if i % 8 == 0
                else c.post("/sparql", data={"query": VERSION})
            )
            assert r.status_code == 200, r.text
            (b,) = r.json()["results"]["bindings"]
            v, n = b["v"]["value"], int(b["n"]["value"])
            assert self.expected.counts[v] == n, f"marker {v} with {n} triples"
            return v
        if kind == 3:  # conditional: 304 for the ETag's version, else the other's rows
            r = c.get("/queries/places.csv", headers={"If-None-Match": self.etag})
            if r.status_code == 304:
                return "304"
            assert r.status_code == 200, r.text
            assert rows(r.text) != self.etag_rows, "200 with the rows of the ETag"
            v = self._which(lambda v: rows(r.text) == self.expected.canned[v][1])
            assert v is not None, "places.csv is neither A's nor B's"
            return v
        n = i // 4 % len(CANNED)
        url, params = CANNED[n]
        r = c.get(url, params=params)
        assert r.status_code == 200, r.text
        got = rows(r.text)
        v = self._which(lambda v: got == self.expected.canned[v][n])
        assert v is not None, f"{url} {params}: neither A's nor B's answer: {got}"
        return v

    def _run(self, k: int) -> None:
        i = k
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self._stop.is_set():
                try:
                    v = self._one(c, i)
                except (AssertionError, httpx.HTTPError, ValueError, KeyError) as exc:
                    with self._lock:
                        self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    v = None
                with self._lock:
                    self.requests += 1
                    if v:
                        self.seen[v] += 1
                i += len(self._threads)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


def served(url: str) -> str:
    r = httpx.get(f"{url}/sparql", params={"query": VERSION}, timeout=30)
    return r.json()["results"]["bindings"][0]["v"]["value"]


def wait_for(url: str, version: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while served(url) != version:
        assert time.monotonic() < deadline, f"still not serving {version}"
        time.sleep(0.05)


def replace_file(path: Path, source: Path | bytes) -> None:
    """Write a dump the way a build does: to a temporary file, then rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    os.replace(tmp, path)


def reload(url: str, data: Path | None = None, headers: dict | None = None) -> httpx.Response:
    params = {"data": str(data)} if data else None
    headers = AUTH if headers is None else headers
    return httpx.post(f"{url}/admin/reload", params=params, headers=headers, timeout=60)


def settled_tree(p: Proc, size: int, deadline_s: float = 10.0) -> list[int]:
    """The server's process tree once old generations have retired."""
    deadline = time.monotonic() + deadline_s
    while len(tree := _tree(p.proc.pid)) != size and time.monotonic() < deadline:
        time.sleep(0.1)
    return tree


@pytest.fixture
def dumps(tmp_path: Path) -> tuple[Path, Path, Path]:
    versions = tmp_path / "versions"  # the --reload-dir
    versions.mkdir()
    a, b = write_versions(versions)
    served_file = tmp_path / "kg.ttl"
    replace_file(served_file, a)
    return a, b, served_file


@pytest.fixture
def server(tmp_path: Path, dumps: tuple[Path, Path, Path]) -> Iterator[Proc]:
    p = jiceng_ready(
        start_jiceng(
            tmp_path / "run",
            "--data",
            str(dumps[2]),
            "--update-token",
            TOKEN,
            "--reload-dir",
            str(dumps[0].parent),
        )
    )
    yield p
    p.stop()


def test_reloads_under_load_never_fail_a_request(server: Proc, dumps) -> None:
    a, b, served_file = dumps
    expected = Expected.of({"A": a, "B": b})
    url, pid = server.url, server.proc.pid
    tree = settled_tree(server, 5)  # server, nursery, zygote, two workers
    dump_etag = httpx.get(f"{url}/dump.nt").headers["etag"]
    hammer = Hammer(url, expected)
    try:
        time.sleep(0.3)
        replace_file(served_file, b)  # 1. a new build at the same path, then SIGHUP
        os.kill(pid, signal.SIGHUP)
        wait_for(url, "B")
        r = reload(url, a)  # 2. another file under --reload-dir
        assert r.status_code == 200, r.text
        assert r.json()["reloaded"] == str(a.resolve()) and served(url) == "A"
        r = reload(url, served_file)  # 3. back to the --data file (B by now)
        assert r.status_code == 200 and served(url) == "B"
        replace_file(served_file, a)  # 4. the file being served, re-read
        r = reload(url)
        assert r.status_code == 200 and served(url) == "A"
        assert httpx.get(f"{url}/dump.nt").headers["etag"] == dump_etag  # A's bytes again
        time.sleep(0.3)
        replace_file(served_file, b"@prefix x: <urn:x#> .\nx:a x:b ")  # 5. a corrupt dump
        r = reload(url)
        assert r.status_code == 422, r.text
        assert "still serving the previous graph" in r.text and "cannot parse" in r.text
        os.kill(pid, signal.SIGHUP)
        assert reload(url).status_code == 422  # after the SIGHUP's attempt (one at a time)
        assert served(url) == "A"
        replace_file(served_file, b)  # 6. fixed: SIGHUP again
        os.kill(pid, signal.SIGHUP)
        wait_for(url, "B")
        assert httpx.get(f"{url}/dump.nt").headers["etag"] != dump_etag
        time.sleep(0.3)
    finally:
        hammer.stop()
    assert not hammer.errors, f"{len(hammer.errors)} bad answers, e.g. {hammer.errors[:5]}"
    assert hammer.seen["A"] > 20 and hammer.seen["B"] > 20, hammer.seen
    assert hammer.seen["304"] > 0, hammer.seen
    print(f"\n{hammer.requests} requests during 8 reloads: {hammer.seen}")
    # Old generations retired: the same number of processes as before, none of the old.
    after = settled_tree(server, len(tree))
    assert len(after) == len(tree) and set(after[2:]).isdisjoint(tree[2:])
    log = server.log.read_text("utf-8")
    assert log.count("reload failed, still serving") == 3, log  # 2 admin calls, 1 SIGHUP
    assert log.count("INFO: reloaded") == 5, log


def test_a_running_query_finishes_on_the_graph_it_started_on(server: Proc, dumps) -> None:
    a, b, _ = dumps
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "r", httpx.get(f"{server.url}/sparql", params={"query": SLOW}, timeout=30)
        )
    )
    thread.start()
    time.sleep(0.5)  # the slow query is running on A
    started = time.monotonic()
    assert reload(server.url, b).status_code == 200
    assert time.monotonic() - started < 1.5  # the reload did not wait for it
    assert served(server.url) == "B"
    thread.join(timeout=30)
    r = result["r"]
    assert r.status_code == 200, r.text
    (binding,) = r.json()["results"]["bindings"]
    assert binding["v"]["value"] == "A"


def test_reload_is_only_for_the_token_and_allowed_paths(server: Proc, dumps, tmp_path) -> None:
    url = server.url
    assert reload(url, headers={}).status_code == 403
    assert reload(url, headers={"Authorization": "Bearer nope"}).status_code == 403
    outside = tmp_path / "outside.ttl"
    outside.write_bytes(dumps[1].read_bytes())
    for path in (outside, Path("/etc/passwd"), dumps[0].parent / ".." / "outside.ttl"):
        r = reload(url, path)
        assert r.status_code == 403 and "--reload-dir" in r.text, r.text
    link = dumps[0].parent / "link.ttl"
    link.symlink_to(outside)  # inside the directory, but the file it names is not
    assert reload(url, link).status_code == 403
    missing = reload(url, dumps[0].parent / "missing.ttl")
    assert missing.status_code == 422 and "no such file" in missing.text
    assert served(url) == "A"


def test_disk_store_reloads(tmp_path: Path, dumps) -> None:
    a, b, served_file = dumps
    store_dir = tmp_path / "store"
    p = jiceng_ready(
        start_jiceng(
            tmp_path / "run",
            "--data",
            str(served_file),
            "--store",
            str(store_dir),
            "--update-token",
            TOKEN,
            "--reload-dir",
            str(a.parent),
        )
    )
    try:
        hammer = Hammer(p.url, Expected.of({"A": a, "B": b}), threads=2)
        try:
            for version, path in (("B", b), ("A", a), ("B", b)):
                r = reload(p.url, path)
                assert r.status_code == 200, r.text
                assert served(p.url) == version
            replace_file(served_file, b"not turtle at all {")
            assert reload(p.url, served_file).status_code == 422
            assert served(p.url) == "B"
            time.sleep(0.3)
        finally:
            hammer.stop()
        assert not hammer.errors, hammer.errors[:5]
        # The same dump again reopens its store; an update right after it waits for the
        # retiring generation (readers of that store) and persists there ...
        assert reload(p.url, b).status_code == 200 and served(p.url) == "B"
        upd = "INSERT DATA { <urn:test:u> <urn:test:u> <urn:test:u> }"
        r = httpx.post(f"{p.url}/sparql", data={"update": upd}, headers=AUTH, timeout=30)
        assert r.status_code == 204, r.text
        ask = {"query": "ASK { <urn:test:u> ?p ?o }"}
        assert httpx.get(f"{p.url}/sparql", params=ask).json()["boolean"] is True
        # ... and only the store in use is left on disk.
        deadline = time.monotonic() + 10
        while len(list(store_dir.glob("oxigraph*"))) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        (db,) = store_dir.glob("oxigraph*")
        assert json.loads((store_dir / "jiceng-store.json").read_text())["db"] == db.name
    finally:
        p.stop()


def test_remote_backend_reload_rereads_the_store(tmp_path: Path) -> None:
    fake = FakeEndpoint()
    p = start_jiceng(
        tmp_path / "run",
        "--backend",
        "sparql",
        "--endpoint",
        fake.url + "/sparql",
        "--update-endpoint",
        fake.url + "/update",
        "--update-token",
        TOKEN,
        "--refresh",
        "0",
    )
    try:
        jiceng_ready(p)
        before = len(fake.requests)
        r = reload(p.url)
        assert r.status_code == 200 and r.json()["reloaded"] == fake.url + "/sparql"
        assert len(fake.requests) > before  # names and counts were read again
        assert reload(p.url, tmp_path / "x.ttl").status_code == 400
        os.kill(p.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        count = len(fake.requests)
        while len(fake.requests) == count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(fake.requests) > count
    finally:
        p.stop()
        fake.close()


@pytest.mark.parametrize("store", [False, True], ids=["memory", "disk"])
def test_a_corrupt_dump_at_start_up_is_one_line_and_exit_2(tmp_path: Path, store: bool) -> None:
    bad = tmp_path / "kg.ttl"
    bad.write_text("@prefix x: <urn:x#> .\nx:a x:b x:c .\nx:d x:e ", "utf-8")
    cmd = [sys.executable, "-m", "kg.cli", "serve", "--data", str(bad), "--port", "1"]
    if store:
        cmd += ["--store", str(tmp_path / "store")]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot parse" in lines[0] and str(bad) in lines[0], proc.stderr
    assert not list((tmp_path / "store").glob("oxigraph*"))  # no half-built store left
