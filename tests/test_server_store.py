"""Loading: on-disk store reuse, ontology graph, start-up errors, disk-store serving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server import store
from tests.conftest import ROOT, start_server, stop_server

ONTO = """@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<https://w3id.org/jiceng/ontology#Street> a owl:Class ;
    rdfs:subClassOf <https://w3id.org/jiceng/ontology#Place> .
"""


def test_memory_load_puts_ontology_in_named_graph(server_sample_ttl: Path, tmp_path: Path) -> None:
    onto = tmp_path / "jiceng.ttl"
    onto.write_text(ONTO, encoding="utf-8")
    loaded = store.load(server_sample_ttl, ontology=onto)
    s = loaded.store
    assert loaded.dump_sha256 == store.sha256_file(server_sample_ttl)
    q = f"ASK {{ GRAPH <{store.ONTOLOGY_GRAPH}> {{ ?c ?p ?o }} }}"
    assert bool(s.query(q))
    assert not bool(s.query("ASK { ?c <http://www.w3.org/2000/01/rdf-schema#subClassOf> ?o }"))


def test_disk_store_is_reused_for_the_same_dump(server_sample_ttl: Path, tmp_path: Path) -> None:
    data = tmp_path / "kg.ttl"
    data.write_bytes(server_sample_ttl.read_bytes())
    first = store.load(data, tmp_path / "store")
    assert not first.reused
    meta = json.loads((tmp_path / "store" / store.META_FILE).read_text())
    assert meta["dump_sha256"] == store.sha256_file(data)
    second = store.load(data, tmp_path / "store")
    assert second.reused
    ro = store.open_read_only(second.path)
    assert len(list(ro.quads_for_pattern(None, None, None))) > 200
    del ro
    data.write_bytes(data.read_bytes() + b"\n<urn:a> <urn:b> <urn:c> .\n")  # a new dump
    third = store.load(data, tmp_path / "store")
    assert not third.reused


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("@prefix x: <urn:x#> .\nx:a x:b ", "broken.ttl", "cannot parse"),
        ("", "missing.ttl", "no such file"),
        ("<urn:a> <urn:b> <urn:c> .", "data.xyz", "unknown RDF format"),
    ],
)
def test_bad_dump_exits_with_one_line(
    tmp_path: Path, content: str, name: str, message: str
) -> None:
    path = tmp_path / name
    if name != "missing.ttl":
        path.write_text(content, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "server.run", "--data", str(path), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and "Traceback" not in proc.stderr


def test_serving_from_disk_store(server_sample_ttl: Path, tmp_path: Path) -> None:
    data = tmp_path / "kg.ttl"
    data.write_bytes(server_sample_ttl.read_bytes())
    token = "disk-token"
    for round_ in range(2):  # the second start opens the store built by the first
        server = start_server(
            data, "--store", str(tmp_path / "store"), "--timeout", "2", token=token
        )
        try:
            url = server.url + "/sparql"
            r = httpx.get(url, params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"})
            n = int(r.json()["results"]["bindings"][0]["n"]["value"])
            assert n == 270 + round_  # the first round's update persisted
            # The second start reads names and counts from the summary the first one
            # saved after its update, not the one it saved at start-up.
            saved = list((tmp_path / "store").glob("jiceng-summary-*.pickle"))
            assert len(saved) == 1
            void = httpx.get(server.url + "/.well-known/void").text
            assert f"void:triples {270 + round_} ;" in void
            if round_ == 0:
                r = httpx.post(
                    url,
                    data={"update": "INSERT DATA { <urn:a> <urn:b> <urn:c> }"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 204
                r = httpx.get(url, params={"query": "ASK { <urn:a> <urn:b> <urn:c> }"})
                assert r.json()["boolean"] is True
            heavy = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
            r = httpx.get(url, params={"query": heavy, "timeout": "1"}, timeout=20)
            assert r.status_code == 503
            r = httpx.get(server.url + "/queries/places.csv")
            assert r.status_code == 200 and "花园路街道" in r.text
            r = httpx.get(server.url + "/queries/entity.json", params={"name": "花园路街道"})
            assert r.status_code == 200  # the name index works, queried or read back
        finally:
            stop_server(server)


def test_saved_summary_is_used_and_checked(server_sample_ttl: Path, tmp_path: Path) -> None:
    """A restart answers from the saved summary; one that does not match is recomputed."""
    import pickle

    data = tmp_path / "kg.ttl"
    data.write_bytes(server_sample_ttl.read_bytes())
    server = start_server(data, "--store", str(tmp_path / "store"))
    stop_server(server)
    (path,) = (tmp_path / "store").glob("jiceng-summary-*.pickle")
    key, (index, stats, classes, properties) = pickle.loads(path.read_bytes())
    assert stats["triples"] == 270 and index.info and classes and properties
    # Tamper with the counts under the right key: the restart must serve what it read.
    path.write_bytes(pickle.dumps((key, (index, {**stats, "triples": 12345}, classes, properties))))
    server = start_server(data, "--store", str(tmp_path / "store"))
    try:
        assert "void:triples 12345 ;" in httpx.get(server.url + "/.well-known/void").text
    finally:
        stop_server(server)
    # Under another key (other start-up queries, another dump) or unreadable: recomputed.
    for content in (pickle.dumps(("other", (index, stats, classes, properties))), b"garbage"):
        path.write_bytes(content)
        server = start_server(data, "--store", str(tmp_path / "store"))
        try:
            assert "void:triples 270 ;" in httpx.get(server.url + "/.well-known/void").text
        finally:
            stop_server(server)
        assert pickle.loads(path.read_bytes())[0] == key  # and saved again


def test_no_process_outlives_a_killed_server(server_sample_ttl: Path) -> None:
    """Zygote and workers die with the server, even mid-query (PR_SET_PDEATHSIG)."""
    import os
    import signal
    import threading
    import time

    from tests.test_server_protocol import HEAVY, _descendants

    server = start_server(server_sample_ttl)
    try:
        thread = threading.Thread(
            target=lambda: httpx.get(f"{server.url}/sparql", params={"query": HEAVY}, timeout=15),
            daemon=True,
        )
        thread.start()
        time.sleep(0.5)
        children = _descendants(server.pid)
        assert len(children) >= 3  # zygote + workers
        os.kill(server.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        alive = children
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in children if _running(p)]
        assert alive == []
    finally:
        if server.proc.poll() is None:
            stop_server(server)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited
