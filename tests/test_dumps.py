"""The dumps in every format, and the ontology exports, checked with tools we did not write.

One build of seeds/ per format per session (``dumps``).  rapper (raptor2-utils), serdi,
pyld, pyoxigraph and rdflib must all read every dump as the same triples; TriG and N-Quads
hold one named graph per article plus the gazetteer and dataset graphs; the bytes do not
depend on Python's hash seed; ``--base`` moves every resource IRI and nothing else.

A missing rapper, serdi or pyld skips its test on a developer machine and fails in CI
(``CI`` set): ``make system-deps`` installs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Dataset, Graph
from rdflib.compare import isomorphic

from kg.cli import main, output_format
from kg.iri import ONTOLOGY, RESOURCE
from kg.rdf import DumpGraph, jsonld_context, serialise
from tests.conftest import ROOT

SEEDS = ROOT / "seeds"
ONTO = ROOT / "ontology"
EXTENSIONS = ("ttl", "nt", "jsonld", "trig", "nq", "rdf")
OX_FORMAT = {
    "ttl": ox.RdfFormat.TURTLE, "nt": ox.RdfFormat.N_TRIPLES, "jsonld": ox.RdfFormat.JSON_LD,
    "trig": ox.RdfFormat.TRIG, "nq": ox.RdfFormat.N_QUADS, "rdf": ox.RdfFormat.RDF_XML,
}  # fmt: skip
RAPPER_SYNTAX = {"ttl": "turtle", "nt": "ntriples", "rdf": "rdfxml", "trig": "trig", "nq": "nquads"}
SERDI_SYNTAX = {"ttl": "turtle", "nt": "ntriples", "trig": "trig", "nq": "nquads"}
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
OWL_NS = "http://www.w3.org/2002/07/owl#"
PROV_NS = "http://www.w3.org/ns/prov#"
ONTOLOGY_IRI = "https://w3id.org/jiceng/ontology"
DATASET, GAZETTEER = "dataset/jiceng-kg", "dataset/zhengzhou-divisions"
REIFICATION = {f"<{RDF_NS}{x}>" for x in ("subject", "predicate", "object")}

Quad = tuple[str, str, str, str]

# rdflib's own TriG and JSON-LD parsers still use its deprecated ConjunctiveGraph.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*(ConjunctiveGraph|default_context).*:DeprecationWarning"
)


# --------------------------------------------------------------------------- helpers


def need(tool: str) -> str:
    """The path of an external tool; without it: skip locally, fail in CI."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not installed (Debian: make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message + " -- required in CI")
        pytest.skip(message)
    return path


def need_pyld():
    try:
        from pyld import jsonld
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyld not installed (pip install -e '.[test]') -- required in CI")
        pytest.skip("pyld not installed (pip install -e '.[test]')")
    return jsonld


def _lang_lower(term: str) -> str:
    # RDF 1.1: language tags compare case-insensitively; some parsers lower-case them.
    m = re.fullmatch(r'(".*")@([A-Za-z0-9-]+)', term, re.S)
    return f"{m.group(1)}@{m.group(2).lower()}" if m else term


def quads(data: bytes | str | Path, fmt: ox.RdfFormat) -> set[Quad]:
    """Quads as N-Triples term strings, parsed by Oxigraph ('' for the default graph)."""
    kw = {"path": str(data)} if isinstance(data, Path) else {"input": data}
    out = set()
    for q in ox.parse(format=fmt, **kw):
        g = "" if isinstance(q.graph_name, ox.DefaultGraph) else q.graph_name.value
        out.add((str(q.subject), str(q.predicate), _lang_lower(str(q.object)), g))
    return out


def triples(qs: set[Quad]) -> set[tuple[str, str, str]]:
    return {q[:3] for q in qs}


def iri(term: str) -> str | None:
    return term[1:-1] if term.startswith("<") else None


def by_graph(qs: set[Quad]) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for s, p, o, g in qs:
        out[g].add((s, p, o))
    return out


def build(out: Path, *extra: str, inputs: tuple[str, ...] = (str(SEEDS),)) -> Path:
    assert main(["build", *inputs, "-o", str(out), "--quiet", *extra]) == 0
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def dumps(seed_dump: Path, tmp_path_factory) -> dict[str, Path]:
    """seeds/ built once in every format (the Turtle one is the shared ``seed_dump``)."""
    out = tmp_path_factory.mktemp("dumps")
    paths = {"ttl": seed_dump}
    for ext in EXTENSIONS[1:]:
        paths[ext] = build(out / f"kg.{ext}")
    return paths


@pytest.fixture(scope="session")
def reference(dumps: dict[str, Path]) -> set[tuple[str, str, str]]:
    """The union graph, as N-Triples says it."""
    return triples(quads(dumps["nt"], ox.RdfFormat.N_TRIPLES))


@pytest.fixture(scope="session")
def named(dumps: dict[str, Path]) -> dict[str, set[tuple[str, str, str]]]:
    return by_graph(quads(dumps["nq"], ox.RdfFormat.N_QUADS))


# --------------------------------------------------------------------------- all formats agree


def test_cli_names_every_format_by_extension() -> None:
    got = {ext: output_format(Path(f"kg.{ext}"), None) for ext in (*EXTENSIONS, "owl")}
    assert got == {"ttl": "turtle", "nt": "ntriples", "jsonld": "jsonld", "trig": "trig",
                   "nq": "nquads", "rdf": "rdfxml", "owl": "rdfxml"}  # fmt: skip


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_every_format_holds_the_same_triples(dumps, reference, ext: str) -> None:
    got = quads(dumps[ext], OX_FORMAT[ext])
    assert triples(got) == reference
    assert len(reference) > 10000


@pytest.fixture(scope="session")
def rdflib_reference(dumps: dict[str, Path]) -> set:
    return set(Graph().parse(dumps["nt"], format="nt"))


@pytest.mark.parametrize("ext", ["ttl", "trig", "rdf", "jsonld"])
def test_rdflib_reads_the_same_graph(dumps, rdflib_reference, ext: str) -> None:
    if ext == "trig":
        ds = Dataset()
        ds.parse(dumps[ext], format="trig")
        got = {(s, p, o) for s, p, o, _ in ds.quads((None, None, None, None))}
    else:
        fmt = {"ttl": "turtle", "rdf": "xml", "jsonld": "json-ld"}[ext]
        got = set(Graph().parse(dumps[ext], format=fmt))
    assert got == rdflib_reference  # no blank nodes: set equality is graph equality


def test_no_blank_nodes_and_no_default_graph_in_quad_dumps(dumps, named) -> None:
    for ext in EXTENSIONS:
        got = quads(dumps[ext], OX_FORMAT[ext])
        assert not [q for q in got if q[0].startswith("_:") or q[2].startswith("_:")], ext
    assert "" not in named


@pytest.mark.parametrize("ext", ["nt", "nq"])
def test_line_dumps_are_sorted_and_unique(dumps, ext: str) -> None:
    lines = dumps[ext].read_text("utf-8").splitlines()
    assert len(lines) == len(set(lines))
    if ext == "nt":
        assert lines == sorted(lines)
    else:  # graph after graph, each sorted
        graphs = [line.rsplit(" ", 2)[1] for line in lines]
        assert graphs == sorted(graphs)
        assert lines == sorted(lines, key=lambda line: (line.rsplit(" ", 2)[1], line))


def test_bytes_do_not_depend_on_the_hash_seed(dumps, tmp_path: Path) -> None:
    """Two fresh processes with other hash seeds write the very same bytes in every format."""
    script = (
        "import sys; from pathlib import Path\n"
        "from kg.cli import FORMATS, output_format\n"
        "from kg.pipeline import build_graph\n"
        "from kg.rdf import serialise\n"
        "graph = build_graph(sorted(Path(sys.argv[1]).glob('*.txt')))[0]\n"
        "for ext in sys.argv[2:]:\n"
        "    fmt = FORMATS[output_format(Path('x.' + ext), None)][0]\n"
        "    Path('kg.' + ext).write_bytes(serialise(graph, fmt))\n"
    )
    procs = []
    for seed in ("1", "2"):
        cwd = tmp_path / seed
        cwd.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-c", script, str(SEEDS), *EXTENSIONS]
        procs.append((cwd, subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE)))
    for _, proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
        proc.stderr.close()
    for ext in EXTENSIONS:
        a, b = ((cwd / f"kg.{ext}").read_bytes() for cwd, _ in procs)
        assert a == b == dumps[ext].read_bytes(), ext


# --------------------------------------------------------------------------- external parsers


@pytest.mark.parametrize("ext", sorted(RAPPER_SYNTAX))
def test_rapper_reads_every_dump(dumps, ext: str) -> None:
    rapper = need("rapper")
    syntax = RAPPER_SYNTAX[ext]
    out_syntax = "nquads" if ext in ("trig", "nq") else "ntriples"
    r = subprocess.run(
        [rapper, "-q", "-i", syntax, "-o", out_syntax, str(dumps[ext])], capture_output=True
    )
    assert r.returncode == 0 and not r.stderr, r.stderr.decode()
    expected = quads(dumps[ext], OX_FORMAT[ext])
    assert quads(r.stdout, ox.RdfFormat.N_QUADS) == expected
    check = subprocess.run([rapper, "-c", "-i", syntax, str(dumps[ext])], capture_output=True)
    assert check.returncode == 0
    assert f"returned {len(expected)} triples" in check.stderr.decode()


@pytest.mark.parametrize("ext", sorted(SERDI_SYNTAX))
def test_serdi_reads_every_dump(dumps, ext: str) -> None:
    serdi = need("serdi")
    out_syntax = "nquads" if ext in ("trig", "nq") else "ntriples"
    r = subprocess.run(
        [serdi, "-i", SERDI_SYNTAX[ext], "-o", out_syntax, str(dumps[ext])], capture_output=True
    )
    assert r.returncode == 0 and not r.stderr, r.stderr.decode()
    assert quads(r.stdout, ox.RdfFormat.N_QUADS) == quads(dumps[ext], OX_FORMAT[ext])


def test_pyld_expands_the_jsonld_to_the_same_triples(dumps, reference) -> None:
    jsonld = need_pyld()
    doc = json.loads(dumps["jsonld"].read_text("utf-8"))
    expanded = jsonld.expand(doc)
    nq = jsonld.to_rdf(expanded, {"format": "application/n-quads"})
    assert triples(quads(nq, ox.RdfFormat.N_QUADS)) == reference


def test_jsonld_is_compact_with_the_shipped_context(dumps) -> None:
    doc = json.loads(dumps["jsonld"].read_text("utf-8"))
    shipped = json.loads((ONTO / "context.jsonld").read_text("utf-8"))["@context"]
    assert doc["@context"] == shipped == jsonld_context(RESOURCE)
    keys = {k for node in doc["@graph"] for k in node}
    assert {"label", "prefLabel", "mentionedIn", "secretaryOf", "subject", "evidence"} <= keys
    assert not [k for k in keys if k.startswith(("http", "jc:", "rdfs:label"))]
    street = next(n for n in doc["@graph"] if n["@id"].startswith("res:street/"))
    assert street["@type"] == "Street" and set(street["label"]) == {"zh", "zh-Latn-pinyin"}


# --------------------------------------------------------------------------- named graphs


def test_one_named_graph_per_article_plus_gazetteer_and_dataset(named) -> None:
    docs = {f"{RESOURCE}document/{p.stem}" for p in SEEDS.glob("*.txt")}
    assert set(named) == docs | {RESOURCE + GAZETTEER, RESOURCE + DATASET}


def test_named_graphs_union_is_the_triple_dump(named, reference) -> None:
    assert set().union(*named.values()) == reference


def test_dataset_graph_is_the_ontology_header(named) -> None:
    ds = f"<{RESOURCE}{DATASET}>"
    assert named[RESOURCE + DATASET] == {
        (ds, f"<{RDF_NS}type>", f"<{OWL_NS}Ontology>"),
        (ds, f"<{RDF_NS}type>", f"<{PROV_NS}Entity>"),
        (ds, f"<{OWL_NS}imports>", f"<{ONTOLOGY_IRI}>"),
    }


def _subjects_of(graph: set[tuple[str, str, str]], p: str, o: str) -> set[str]:
    return {s for s, pp, oo in graph if pp == p and oo == o}


def test_evidence_sits_in_the_graph_it_was_derived_from(named) -> None:
    """Statements, sentences and mentionedIn point at the graph that holds them."""
    seen: set[str] = set()
    for g, graph in named.items():
        statements = _subjects_of(graph, f"<{RDF_NS}type>", f"<{RDF_NS}Statement>")
        assert not statements & seen, "a statement node in two graphs"
        seen |= statements
        derived = {(s, o) for s, p, o in graph if p == f"<{PROV_NS}wasDerivedFrom>"}
        assert derived == {(s, f"<{g}>") for s in statements}
        for s, p, o in graph:
            if p in (f"<{ONTOLOGY}inDocument>", f"<{ONTOLOGY}mentionedIn>"):
                assert o == f"<{g}>", (s, p, o)
        # each reified fact is asserted in the same graph as its statement
        parts = defaultdict(dict)
        for s, p, o in graph:
            if s in statements and p in (
                f"<{RDF_NS}{x}>" for x in ("subject", "predicate", "object")
            ):
                parts[s][p.rsplit("#", 1)[1][:-1]] = o
        for st, spo in parts.items():
            assert (spo["subject"], spo["predicate"], spo["object"]) in graph, st


def test_every_graph_describes_the_resources_it_uses(named) -> None:
    """Self-contained graphs: each resource named in a graph has its type (and a label) there."""
    for g, graph in named.items():
        typed = {s for s, p, _ in graph if p == f"<{RDF_NS}type>"}
        labelled = {s for s, p, _ in graph if p == "<http://www.w3.org/2000/01/rdf-schema#label>"}
        for s, _, o in graph:
            for node in (s, o):
                if node.startswith(f"<{RESOURCE}"):
                    assert node in typed, (g, node)
                    if "/statement/" not in node and "/sentence/" not in node:
                        assert node in labelled or node == f"<{RESOURCE}{DATASET}>", (g, node)


def test_gazetteer_graph_holds_codes_and_parents_not_text(named) -> None:
    gaz = named[RESOURCE + GAZETTEER]
    codes = {t for graph in named.values() for t in graph if t[1] == f"<{ONTOLOGY}adminCode>"}
    assert codes and codes <= gaz
    assert not any(p == f"<{ONTOLOGY}mentionedIn>" for _, p, _ in gaz)
    assert any(p == f"<{ONTOLOGY}partOf>" for _, p, _ in gaz)
    rules = {o for _, p, o in gaz if p == f"<{ONTOLOGY}rule>"}
    assert rules == {'"gazetteer"'}


def test_an_entity_named_in_two_articles_is_described_in_both(named) -> None:
    mentioned: dict[str, set[str]] = defaultdict(set)
    for g, graph in named.items():
        for s, p, _ in graph:
            if p == f"<{ONTOLOGY}mentionedIn>":
                mentioned[s].add(g)
    shared = [s for s, gs in mentioned.items() if len(gs) > 1]
    assert shared
    for s in shared:
        for g in mentioned[s]:
            labels = {o for ss, p, o in named[g] if ss == s and p.endswith("#label>")}
            assert len(labels) >= 2, (s, g)


# --------------------------------------------------------------------------- serving quad dumps


def _union_store(path: Path) -> ox.Store:
    """What the server should do with a quad dump: named graphs kept, union as default."""
    store = ox.Store()
    store.bulk_load(path=str(path), format=OX_FORMAT[path.suffix[1:]])
    store.update("INSERT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }")
    return store


@pytest.mark.parametrize("ext", ["trig", "nq"])
def test_canned_queries_on_a_quad_dump_with_union_default_graph(dumps, ext: str) -> None:
    from server import canned, offline

    ttl = offline.load_store(dumps["ttl"])
    quad = _union_store(dumps[ext])
    first_street = (
        "SELECT ?l WHERE { ?s a <https://w3id.org/jiceng/ontology#Street> ; "
        "<http://www.w3.org/2004/02/skos/core#prefLabel> ?l } ORDER BY ?l LIMIT 1"
    )
    name = offline.run_query(ttl, first_street, "csv").splitlines()[1]
    for query, cq in sorted(canned.load_all().items()):
        params = {p.name: name for p in cq.params if p.required}
        expected = sorted(offline.run_canned(ttl, query, params, "csv").splitlines())
        got = sorted(offline.run_canned(quad, query, params, "csv").splitlines())
        assert got == expected, query  # as multisets: ties in ORDER BY may come either way
        assert len(expected) > 1, query


def test_jiceng_query_reads_a_trig_dump(dumps, capsys) -> None:
    capsys.readouterr()
    assert main(["query", "--data", str(dumps["trig"]), "--canned", "party-secretaries",
                 "--format", "csv"]) == 0  # fmt: skip
    assert len(capsys.readouterr().out.splitlines()) > 20


# --------------------------------------------------------------------------- ontology


def test_dump_imports_the_ontology_as_an_owl_ontology(reference) -> None:
    ds = f"<{RESOURCE}{DATASET}>"
    assert (ds, f"<{RDF_NS}type>", f"<{OWL_NS}Ontology>") in reference
    assert (ds, f"<{OWL_NS}imports>", f"<{ONTOLOGY_IRI}>") in reference
    onto = quads(ONTO / "jiceng.ttl", ox.RdfFormat.TURTLE)
    assert (f"<{ONTOLOGY_IRI}>", f"<{RDF_NS}type>", f"<{OWL_NS}Ontology>", "") in onto
    catalog = (ONTO / "catalog-v001.xml").read_text("utf-8")
    assert f'name="{ONTOLOGY_IRI}" uri="jiceng.rdf"' in catalog


def test_rdfxml_dump_starts_with_the_ontology_header(dumps) -> None:
    first = re.search(r"<rdf:Description rdf:about=\"([^\"]+)\"", dumps["rdf"].read_text("utf-8"))
    assert first and first.group(1) == RESOURCE + DATASET


def _export_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ontology_export", ONTO / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ontology_exports_are_up_to_date() -> None:
    for name, data in _export_module().exports().items():
        assert (ONTO / name).read_bytes() == data, f"run: python ontology/export.py ({name})"


def test_ontology_exports_do_not_depend_on_the_hash_seed() -> None:
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, str(ONTO / "export.py"), "--check"], env=env,
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["jiceng.nt", "jiceng.rdf", "jiceng.jsonld"])
def test_ontology_exports_are_the_ontology(name: str) -> None:
    fmt = {"nt": "nt", "rdf": "xml", "jsonld": "json-ld"}[name.rsplit(".", 1)[1]]
    source = Graph().parse(ONTO / "jiceng.ttl", format="turtle")
    assert isomorphic(Graph().parse(ONTO / name, format=fmt), source)


@pytest.mark.parametrize(("name", "syntax"), [("jiceng.ttl", "turtle"), ("jiceng.nt", "ntriples"),
                                              ("jiceng.rdf", "rdfxml")])  # fmt: skip
def test_rapper_reads_the_ontology_exports(name: str, syntax: str) -> None:
    rapper = need("rapper")
    r = subprocess.run([rapper, "-q", "-i", syntax, "-o", "ntriples", str(ONTO / name)],
                       capture_output=True)  # fmt: skip
    assert r.returncode == 0 and not r.stderr, r.stderr.decode()
    got = Graph().parse(data=r.stdout.decode(), format="nt")
    assert isomorphic(got, Graph().parse(ONTO / "jiceng.ttl", format="turtle"))


@pytest.mark.parametrize(("name", "syntax"), [("jiceng.ttl", "turtle"), ("jiceng.nt", "ntriples")])
def test_serdi_reads_the_ontology_exports(name: str, syntax: str) -> None:
    serdi = need("serdi")
    r = subprocess.run([serdi, "-i", syntax, "-o", "ntriples", str(ONTO / name)],
                       capture_output=True)  # fmt: skip
    assert r.returncode == 0 and not r.stderr, r.stderr.decode()
    got = Graph().parse(data=r.stdout.decode(), format="nt")
    assert isomorphic(got, Graph().parse(ONTO / "jiceng.ttl", format="turtle"))


def test_pyld_reads_the_ontology_jsonld() -> None:
    jsonld = need_pyld()
    doc = json.loads((ONTO / "jiceng.jsonld").read_text("utf-8"))
    nq = jsonld.to_rdf(jsonld.expand(doc), {"format": "application/n-quads"})
    got = Graph().parse(data=nq, format="nt")
    expected = Graph()
    for s, p, o in Graph().parse(ONTO / "jiceng.ttl", format="turtle"):  # pyld lower-cases tags
        lang = getattr(o, "language", None)
        expected.add((s, p, type(o)(str(o), lang=lang.lower()) if lang else o))
    assert isomorphic(got, expected)


# --------------------------------------------------------------------------- --base


@pytest.fixture(scope="module")
def based(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("based")
    base = "https://example.org/kg/"
    return {ext: build(out / f"kg.{ext}", "--base", base) for ext in ("nq", "jsonld")}


def test_base_moves_every_resource_iri_and_not_the_ontology(based, named) -> None:
    base = "https://example.org/kg/"
    got = quads(based["nq"], ox.RdfFormat.N_QUADS)
    nodes = {iri(t) for q in got for t in (q[0], q[2], f"<{q[3]}>") if iri(t)}
    assert not [n for n in nodes if n.startswith(RESOURCE)]
    assert {g for *_, g in got} == {base + g[len(RESOURCE) :] for g in named}
    kinds = {n[len(base) :].split("/")[0] for n in nodes if n.startswith(base)}
    assert {"document", "sentence", "statement", "dataset", "street", "person"} <= kinds
    assert {q[1] for q in got if q[1].startswith(f"<{ONTOLOGY}")}  # jc: predicates unchanged
    foreign = {n for n in nodes if not n.startswith(base)}
    assert all(n.startswith((ONTOLOGY_IRI, "http://www.w3.org/", "https://github.com/"))
               for n in foreign), foreign  # fmt: skip
    assert (f"<{base}{DATASET}>", f"<{OWL_NS}imports>", f"<{ONTOLOGY_IRI}>", base + DATASET) in got


def test_base_is_the_res_prefix_of_the_jsonld_context(based) -> None:
    doc = json.loads(based["jsonld"].read_text("utf-8"))
    assert doc["@context"]["res"] == "https://example.org/kg/"
    assert doc["@context"]["jc"] == ONTOLOGY
    ids = [n["@id"] for n in doc["@graph"]]
    assert ids and all(i.startswith("res:") or not i.startswith("http") for i in ids)
    got = triples(quads(based["jsonld"], ox.RdfFormat.JSON_LD))
    assert got == triples(quads(based["nq"], ox.RdfFormat.N_QUADS))


@pytest.mark.parametrize("bad", ["example.org/kg/", "https://example.org/my kg/", "<x>/"])
def test_a_bad_base_is_a_usage_error(tmp_path: Path, bad: str, capsys) -> None:
    doc = str(SEEDS / "004_1543e681b62a70bd.txt")
    assert main(["build", doc, "-o", str(tmp_path / "x.ttl"), "--base", bad, "-q"]) == 2
    assert "--base" in capsys.readouterr().err
    assert not (tmp_path / "x.ttl").exists()


# --------------------------------------------------------------------------- awkward content


def _awkward() -> DumpGraph:
    """Literals and IRIs that trip up serialisers: quotes, markup, controls, odd IRIs."""
    from rdflib import RDF, RDFS, XSD, Literal, URIRef

    base = "https://example.org/kg/"
    g = DumpGraph(base)
    s, t = URIRef(base + "thing/a"), URIRef("https://example.org/街道?x=1&y=2#'")
    jc = ONTOLOGY
    rows = [
        (s, RDF.type, URIRef(jc + "Street")),
        (s, RDFS.label, Literal('say "hi" \\ back\nslash\r\ttab', lang="zh")),
        (s, RDFS.label, Literal("<b> & ]]> 'x'", lang="zh")),
        (s, RDFS.label, Literal("second zh", lang="zh")),
        (s, RDFS.label, Literal("no language")),  # the label term cannot take it
        (s, RDFS.comment, Literal("", lang="en-GB")),
        (s, URIRef(jc + "rule"), Literal("jc:notAnIri")),
        (s, URIRef(jc + "rule"), t),  # an IRI where strings are expected
        (s, URIRef(jc + "index"), Literal(-5)),
        (s, URIRef(jc + "index"), Literal("007", datatype=XSD.integer)),  # rdflib: "7"
        (s, URIRef(jc + "confidence"), Literal("-0.5", datatype=XSD.decimal)),
        (s, URIRef(jc + "quantity"), Literal("2021", datatype=XSD.gYear)),  # pyld rewrites doubles
        (s, URIRef(jc + "sourceFile"), Literal("x", datatype=XSD.string)),
        (s, URIRef("http://purl.org/dc/terms/date"), Literal("2021-03-04", datatype=XSD.date)),
        (s, URIRef("https://example.org/vocab/flag"), Literal("true", datatype=XSD.boolean)),
        (s, URIRef("https://example.org/vocab#v"), Literal("x", datatype=URIRef("urn:dt:x"))),
        (t, RDF.type, URIRef("https://example.org/vocab/Other")),
        (t, URIRef(jc + "partOf"), s),
    ]
    for n, row in enumerate(rows):
        g.add(row)
        g.named[URIRef(base + ("document/one" if n % 2 else "document/two"))].add(row)
    return g


def test_awkward_content_survives_every_writer_and_parser(tmp_path: Path) -> None:
    graph = _awkward()
    expected = {(q[0], q[1], _lang_lower(q[2])) for q in _ox_terms(graph)}
    fmts = {"ttl": "turtle", "nt": "nt", "jsonld": "json-ld", "rdf": "xml", "trig": "trig",
            "nq": "nquads"}  # fmt: skip
    for ext, fmt in fmts.items():
        path = tmp_path / f"a.{ext}"
        path.write_bytes(serialise(graph, fmt))
        got = quads(path, OX_FORMAT[ext])
        assert triples(got) == expected, ext
        if ext in ("trig", "nq"):
            assert {q[3] for q in got} == {str(n) for n in graph.named}
        if ext in RAPPER_SYNTAX and shutil.which("rapper"):
            r = subprocess.run(["rapper", "-q", "-i", RAPPER_SYNTAX[ext], "-o", "nquads",
                                str(path)], capture_output=True)  # fmt: skip
            assert r.returncode == 0 and not r.stderr, (ext, r.stderr)
            assert quads(r.stdout, ox.RdfFormat.N_QUADS) == got, ext
        if ext in SERDI_SYNTAX and shutil.which("serdi"):
            r = subprocess.run(["serdi", "-i", SERDI_SYNTAX[ext], "-o", "nquads", str(path)],
                               capture_output=True)  # fmt: skip
            assert r.returncode == 0 and not r.stderr, (ext, r.stderr)
            assert quads(r.stdout, ox.RdfFormat.N_QUADS) == got, ext
    jsonld = need_pyld()
    doc = json.loads((tmp_path / "a.jsonld").read_text("utf-8"))
    nq = jsonld.to_rdf(jsonld.expand(doc), {"format": "application/n-quads"})
    assert triples(quads(nq, ox.RdfFormat.N_QUADS)) == expected


def _ox_terms(graph: Graph) -> set[Quad]:
    """The graph's triples as Oxigraph writes terms (via our N-Triples, checked by Oxigraph)."""
    return quads(serialise(graph, "nt"), ox.RdfFormat.N_TRIPLES)


def test_rdfxml_refuses_what_xml_cannot_carry() -> None:
    from rdflib import RDFS, Literal, URIRef

    g = Graph()
    g.add((URIRef("https://example.org/a"), RDFS.label, Literal("bell \x07")))
    with pytest.raises(ValueError, match="RDF/XML"):
        serialise(g, "xml")
    assert b"\\u0007" in serialise(g, "nt")  # the line formats escape it


def test_iris_that_no_syntax_may_carry_are_refused() -> None:
    from rdflib import RDFS, Literal, URIRef

    g = Graph()
    g.add((URIRef("https://example.org/a b"), RDFS.label, Literal("x")))
    for fmt in ("nt", "turtle", "xml", "json-ld"):
        with pytest.raises(ValueError, match="IRI"):
            serialise(g, fmt)
