"""``jiceng load``: push dumps into an Oxigraph server through the SPARQL 1.1 Graph Store
Protocol, then serve that store with ``--backend sparql``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from kg.cli import main
from tests.conftest import FIXTURES, ROOT, free_port
from tests.remote_stores import (
    Proc,
    canned,
    canned_cases,
    jiceng_ready,
    norm_rows,
    oxigraph_ready,
    reference,
    start_jiceng,
    start_oxigraph,
)

TRIG = FIXTURES / "documents.trig"
RES = "https://w3id.org/jiceng/resource/"
DOC1, DOC2 = RES + "document/001_aaaa", RES + "document/002_bbbb"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[Proc]:
    """An in-memory, writable Oxigraph server."""
    p = start_oxigraph(tmp_path_factory.mktemp("gsp"))
    try:
        yield oxigraph_ready(p)
    finally:
        p.stop()


def graph(store: Proc, iri: str | None) -> set[tuple[str, str, str]]:
    """The triples of one graph (None: the default graph), as N-Triples terms."""
    where = f"GRAPH <{iri}> {{ ?s ?p ?o }}" if iri else "?s ?p ?o"
    r = httpx.post(
        store.url + "/query",
        data={"query": f"SELECT ?s ?p ?o WHERE {{ {where} }}"},
        headers={"Accept": "text/tab-separated-values"},
        timeout=30,
    )
    r.raise_for_status()
    return {tuple(line.split("\t")) for line in r.text.splitlines()[1:]}  # type: ignore[misc]


def load(store: Proc, dump: Path, *args: str) -> int:
    return main(["load", "--to", store.url + "/store", *args, str(dump), "--quiet"])


def test_trig_dump_is_one_graph_per_document(store: Proc, capsys) -> None:
    assert main(["load", "--to", store.url + "/store", str(TRIG), "--graph", RES + "g/x"]) == 0
    assert "3 graph(s), 17 triples" in capsys.readouterr().err
    doc1, doc2 = graph(store, DOC1), graph(store, DOC2)
    assert len(doc1) == len(doc2) == 8
    assert all(s.startswith("<" + RES) for s, _, _ in doc1 | doc2)
    assert len(graph(store, RES + "g/x")) == 1  # the default-graph triple went to --graph


def test_reloading_one_document_replaces_only_its_graph(store: Proc, tmp_path: Path) -> None:
    assert load(store, TRIG) == 0
    before1, before2 = graph(store, DOC1), graph(store, DOC2)
    # Re-extracted article 2: a new secretary; article 1 not in this dump at all.
    text = TRIG.read_text("utf-8")
    second = text[text.index("res:document\\/002_bbbb {") :].replace("李四", "王五")
    v2 = tmp_path / "v2.trig"
    v2.write_text(text[: text.index("res:dataset")] + second, "utf-8")
    assert load(store, v2) == 0
    after1, after2 = graph(store, DOC1), graph(store, DOC2)
    assert after1 == before1
    assert after2 != before2 and len(after2) == len(before2)
    assert any("王五" in o for _, _, o in after2) and not any("李四" in o for _, _, o in after2)


def test_triples_dump_replaces_the_named_graph(
    store: Proc, server_sample_ttl: Path, tmp_path: Path
) -> None:
    assert load(store, server_sample_ttl, "--graph", RES + "g/sample") == 0
    named = graph(store, RES + "g/sample")
    assert len(named) > 200
    # Half the triples as N-Triples: PUT replaces the graph, it does not add to it.
    nt = tmp_path / "half.nt"
    quads = list(ox.parse(path=str(server_sample_ttl), format=ox.RdfFormat.TURTLE))
    nt.write_bytes(ox.serialize([q.triple for q in quads[::2]], format=ox.RdfFormat.N_TRIPLES))
    assert load(store, nt, "--graph", RES + "g/sample") == 0
    assert graph(store, RES + "g/sample") < named
    assert len(graph(store, RES + "g/sample")) == len(quads[::2])


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kg.cli", "load", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_http_failures_are_one_line_without_traceback(store: Proc, tmp_path: Path) -> None:
    cases = [
        ([store.url + "/nowhere", str(TRIG)], "404"),
        ([f"http://127.0.0.1:{free_port()}/store", str(TRIG)], "cannot reach the store"),
    ]
    bad = tmp_path / "bad.ttl"
    bad.write_text("<urn:a> <urn:b> .\n", "utf-8")  # the store's parser says what is wrong
    cases.append(([store.url + "/store", str(bad)], "400"))
    for (url, dump), expected in cases:
        r = _cli("--to", url, dump)
        assert r.returncode == 1, r.stderr
        assert expected in r.stderr and "Traceback" not in r.stderr
        assert r.stderr.startswith("jiceng: error: PUT ")
        assert len(r.stderr.strip().splitlines()) == 1


def test_bad_dumps_are_input_errors(store: Proc, tmp_path: Path) -> None:
    broken = tmp_path / "broken.trig"
    broken.write_text("<urn:g> { <urn:a> <urn:b> ", "utf-8")
    unknown = tmp_path / "dump.xyz"
    unknown.write_text("x", "utf-8")
    for dump, expected in (
        (broken, "cannot parse"),
        (unknown, "unknown RDF format"),
        (tmp_path / "missing.ttl", "no such file"),
    ):
        r = _cli("--to", store.url + "/store", str(dump))
        assert r.returncode == 3 and expected in r.stderr and "Traceback" not in r.stderr


def test_loaded_store_served_remotely_answers_like_the_embedded_store(
    store: Proc, seed_dump: Path, tmp_path_factory
) -> None:
    assert load(store, seed_dump) == 0  # into the default graph
    front = start_jiceng(
        tmp_path_factory.mktemp("front"),
        "--backend",
        "sparql",
        "--endpoint",
        store.url + "/query",
        "--graph-store",
        store.url + "/store",
        "--refresh",
        "1",
    )
    try:
        jiceng_ready(front)
        mismatches = []
        for name, params in canned_cases(lambda n, p: reference(seed_dump, n, p)):
            want_status, want = reference(seed_dump, name, params)
            got_status, got = canned(front.url, name, params)
            if got_status != want_status:
                mismatches.append(f"{name} {params}: {got_status} != {want_status}")
            elif want_status == 200 and (
                got["head"]["vars"] != want["head"]["vars"] or norm_rows(got) != norm_rows(want)
            ):
                mismatches.append(f"{name} {params}: rows differ")
        assert not mismatches, "\n".join(mismatches)

        # A load behind the server's back shows after the next refresh (--refresh 1 s).
        triples = len(graph(store, None))
        assert f"void:triples {triples} ;" in httpx.get(front.url + "/.well-known/void").text
        assert load(store, TRIG) == 0  # its default-graph triple replaces the default graph
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "void:triples 1 ;" in httpx.get(front.url + "/.well-known/void").text:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the remote backend did not notice the new default graph")
    finally:
        front.stop()


def test_load_does_not_import_the_nlp_pipeline(store: Proc) -> None:
    code = (
        "import sys; from kg.cli import main; "
        f"assert main(['load', '--to', '{store.url}/store', '{TRIG}', '-q']) == 0; "
        "print(' '.join(sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    pipeline = {"spacy", "pkuseg", "jieba", "kg.pipeline", "kg.segment", "kg.recognise"}
    assert not loaded & pipeline
