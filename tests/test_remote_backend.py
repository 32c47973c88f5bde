"""``jiceng serve --backend sparql`` in front of stores no one here wrote: an Oxigraph
server and Virtuoso, each bulk-loaded with the seed dump.  Every canned query, with no
parameters and with a parameter or two, must answer the same rows as the embedded store
(rows compared as multisets of normalised terms), and so must the SPARQL protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from kg.cli import main
from tests.conftest import FIXTURES
from tests.remote_stores import (
    Proc,
    canned,
    canned_cases,
    jiceng_ready,
    norm_rows,
    oxigraph_ready,
    start_jiceng,
    start_oxigraph,
    start_virtuoso,
    virtuoso_load,
)

VIRTUOSO_GRAPH = "urn:jiceng:test:dump"  # Virtuoso keeps data in named graphs
RES = "https://w3id.org/jiceng/resource/"


@pytest.fixture(scope="module")
def stores(seed_dump: Path, tmp_path_factory) -> Iterator[dict[str, Proc | str]]:
    """The embedded server, both stores and a remote-backend server in front of each.

    Everything starts at once (the stores come up while the embedded server loads); a
    store whose program is missing is recorded as the reason to skip its tests.
    """
    work = tmp_path_factory.mktemp("remote")
    started: dict[str, Proc | str] = {}
    try:
        started["embedded"] = start_jiceng(work, "--data", str(seed_dump), name="embedded")
        for name, start in (
            ("oxigraph", lambda: start_oxigraph(work / "oxigraph", seed_dump)),
            ("virtuoso", lambda: start_virtuoso(work / "virtuoso")),
        ):
            try:
                started[name] = start()
            except pytest.skip.Exception as exc:
                started[name] = exc.msg
        ox_server, virtuoso = started["oxigraph"], started["virtuoso"]
        if isinstance(ox_server, Proc):
            oxigraph_ready(ox_server)
            started["via-oxigraph"] = start_jiceng(
                work,
                "--backend",
                "sparql",
                "--endpoint",
                ox_server.url + "/query",
                "--graph-store",
                ox_server.url + "/store",
                name="via-oxigraph",
            )
        else:
            started["via-oxigraph"] = ox_server
        if isinstance(virtuoso, Proc):
            virtuoso_load(virtuoso, seed_dump, VIRTUOSO_GRAPH)
            started["via-virtuoso"] = start_jiceng(
                work,
                "--backend",
                "sparql",
                "--endpoint",
                virtuoso.url + "/sparql",
                "--default-graph",
                VIRTUOSO_GRAPH,
                name="via-virtuoso",
            )
        else:
            started["via-virtuoso"] = virtuoso
        for key in ("embedded", "via-oxigraph", "via-virtuoso"):
            p = started[key]
            if isinstance(p, Proc):
                jiceng_ready(p)
        yield started
    finally:
        for p in reversed(list(started.values())):
            if isinstance(p, Proc):
                p.stop()


@pytest.fixture(scope="module")
def embedded(stores: dict[str, Proc | str]) -> str:
    p = stores["embedded"]
    assert isinstance(p, Proc)
    return p.url


@pytest.fixture(params=["oxigraph", "virtuoso"])
def remote(request, stores: dict[str, Proc | str]) -> str:
    p = stores["via-" + request.param]
    if not isinstance(p, Proc):
        pytest.skip(p)
    return p.url


@pytest.fixture(scope="module")
def cases(embedded: str) -> list[tuple[str, dict[str, str]]]:
    return canned_cases(lambda name, params: canned(embedded, name, params))


def test_every_canned_query_answers_like_the_embedded_store(
    embedded: str, remote: str, cases: list[tuple[str, dict[str, str]]]
) -> None:
    assert len({name for name, _ in cases}) == len(list(Path("queries").glob("*.rq")))
    mismatches = []
    for name, params in cases:
        want_status, want = canned(embedded, name, params)
        got_status, got = canned(remote, name, params)
        if got_status != want_status:
            mismatches.append(f"{name} {params}: status {got_status}, want {want_status}: {got}")
            continue
        if want_status != 200:
            continue  # e.g. entity without its required name: the same 400 on both
        if params:
            assert want["results"]["bindings"], f"{name} {params}: no rows to compare"
        if got["head"]["vars"] != want["head"]["vars"]:
            mismatches.append(f"{name}: columns {got['head']['vars']} != {want['head']['vars']}")
        elif norm_rows(got) != norm_rows(want):
            extra, missing = norm_rows(got) - norm_rows(want), norm_rows(want) - norm_rows(got)
            mismatches.append(
                f"{name} {params}: {sum(extra.values())} extra rows e.g. {list(extra)[:1]}, "
                f"{sum(missing.values())} missing e.g. {list(missing)[:1]}"
            )
    assert not mismatches, "\n".join(mismatches)


def _sparql(url: str, query: str, accept: str = "application/sparql-results+json", **params):
    return httpx.post(
        f"{url}/sparql", data={"query": query, **params}, headers={"Accept": accept}, timeout=60
    )


QUERIES = [
    "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "PREFIX jc: <https://w3id.org/jiceng/ontology#> "
    "SELECT ?c (COUNT(?s) AS ?n) WHERE { ?s a ?c FILTER(STRSTARTS(STR(?c), STR(jc:))) } "
    "GROUP BY ?c",
    # (Virtuoso needs a bound start for a transitive path: "transitive start not given")
    "PREFIX jc: <https://w3id.org/jiceng/ontology#> SELECT DISTINCT ?x ?top WHERE "
    "{ ?x a jc:Community . ?x jc:partOf+ ?top FILTER NOT EXISTS { ?top jc:partOf ?u } }",
]


@pytest.mark.parametrize("query", QUERIES)
def test_sparql_select_answers_like_the_embedded_store(embedded: str, remote: str, query: str):
    want, got = _sparql(embedded, query), _sparql(remote, query)
    assert got.status_code == want.status_code == 200
    assert norm_rows(got.json()) == norm_rows(want.json())


def test_ask_construct_and_formats_like_the_embedded_store(embedded: str, remote: str) -> None:
    ask = "PREFIX jc: <https://w3id.org/jiceng/ontology#> ASK { ?x a jc:TemporaryPartyBranch }"
    assert (
        _sparql(remote, ask).json()
        == _sparql(embedded, ask).json()
        == {
            "head": {},
            "boolean": True,
        }
    )
    construct = (
        "PREFIX jc: <https://w3id.org/jiceng/ontology#> "
        "CONSTRUCT { ?p jc:secretaryOf ?u } WHERE { ?p jc:secretaryOf ?u }"
    )
    want = _sparql(embedded, construct, "application/n-triples")
    got = _sparql(remote, construct, "application/n-triples")
    assert got.headers["content-type"] == want.headers["content-type"]
    triples = [set(ox.parse(r.content, format=ox.RdfFormat.N_TRIPLES)) for r in (got, want)]
    assert triples[0] == triples[1] and triples[0]
    # Every result format is produced here, the same way, whichever store answered.
    for accept in ("application/sparql-results+xml", "text/csv", "text/tab-separated-values"):
        q = QUERIES[0]
        w, g = _sparql(embedded, q, accept), _sparql(remote, q, accept)
        assert (g.status_code, g.headers["content-type"]) == (200, w.headers["content-type"])
        assert g.content == w.content
    for accept in ("text/turtle", "application/ld+json", "application/rdf+xml"):
        assert _sparql(remote, construct, accept).headers["content-type"].startswith(accept)
    assert _sparql(remote, QUERIES[0], "image/png").status_code == 406


def test_dump_and_void_match_the_embedded_store(embedded: str, remote: str) -> None:
    want = httpx.get(f"{embedded}/dump.nt", timeout=60)
    got = httpx.get(f"{remote}/dump.nt", timeout=60)
    assert got.status_code == 200 and got.headers.get("etag")
    assert set(got.text.splitlines()) == set(want.text.splitlines())
    ttl = httpx.get(f"{remote}/dump.ttl", timeout=60)
    assert ttl.text.startswith("@prefix")
    void = httpx.get(f"{remote}/.well-known/void", timeout=30).text
    void_embedded = httpx.get(f"{embedded}/.well-known/void", timeout=30).text
    assert f"void:triples {len(want.text.splitlines())} ;" in void
    assert void.count("void:classPartition") == void_embedded.count("void:classPartition")


def test_safety_rules_before_forwarding(embedded: str, remote: str) -> None:
    bad = {
        "SERVICE": "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
        "malformed": "SELEC * WHERE { ?s ?p ?o }",
        # Virtuoso pragma that would make it fetch URLs: not SPARQL 1.1, refused here.
        "pragma": 'DEFINE get:soft "replace" SELECT * FROM <http://example.org/> { ?s ?p ?o }',
    }
    for what, q in bad.items():
        w, g = _sparql(embedded, q), _sparql(remote, q)
        assert (g.status_code, g.text) == (w.status_code, w.text) == (400, w.text), what
    huge = "SELECT * WHERE { ?s ?p ?o } #" + "x" * 70000
    assert _sparql(remote, huge).status_code == 413


def test_pages_and_name_resolution_over_the_remote(
    embedded: str, remote: str, cases: list[tuple[str, dict[str, str]]]
) -> None:
    iri = next(p["name"] for name, p in cases if name == "entity" and p)
    path = iri.split("/resource/", 1)[1]
    page = httpx.get(f"{remote}/resource/{path}", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    home = httpx.get(f"{remote}/", timeout=30)
    assert home.status_code == 200
    html = httpx.get(f"{remote}/queries/places.html", timeout=30)
    assert html.status_code == 200
    nothing = {"within": "没有这个地方"}
    assert canned(remote, "places", nothing)[0] == canned(embedded, "places", nothing)[0] == 404


def test_load_into_virtuoso_replaces_one_document_graph(
    stores: dict[str, Proc | str], tmp_path: Path
) -> None:
    """``jiceng load`` through Virtuoso's Graph Store endpoint (Digest auth, as it asks)."""
    virtuoso = stores["virtuoso"]
    if not isinstance(virtuoso, Proc):
        pytest.skip(virtuoso)
    gsp = virtuoso.url.replace("http://", "http://dba:dba@") + "/sparql-graph-crud-auth"
    trig = FIXTURES / "documents.trig"
    docs = [RES + "document/001_aaaa", RES + "document/002_bbbb"]

    def graph(iri: str) -> set[ox.Quad]:
        r = httpx.post(
            virtuoso.url + "/sparql",
            data={"query": f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}"},
            headers={"Accept": "application/n-triples"},
            timeout=30,
        )
        return set(ox.parse(r.content, format=ox.RdfFormat.N_TRIPLES))  # Virtuoso writes \uXXXX

    assert main(["load", "--to", gsp, str(trig), "--graph", RES + "g/x", "--quiet"]) == 0
    before = [graph(d) for d in docs]
    assert all(len(g) == 8 for g in before)
    text = trig.read_text("utf-8")
    v2 = tmp_path / "v2.trig"
    second = text[text.index("res:document\\/002_bbbb {") :].replace("李四", "王五")
    v2.write_text(text[: text.index("res:dataset")] + second, "utf-8")
    assert main(["load", "--to", gsp, str(v2), "--quiet"]) == 0
    after = [graph(d) for d in docs]
    assert after[0] == before[0]
    assert after[1] != before[1] and len(after[1]) == 8 and "王五" in str(after[1])
    # The served dump (another graph) is untouched.
    assert _sparql(stores["via-virtuoso"].url, QUERIES[0]).json()["results"]["bindings"][0]["n"][
        "value"
    ] == str(len(httpx.get(stores["via-virtuoso"].url + "/dump.nt").text.splitlines()))
