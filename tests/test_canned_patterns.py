"""A parameter's ``pattern`` (queries/*.rq headers) only restates the query's filter:
with it first the engine starts from the bound value, and the rows stay the same."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest

from server import canned, sparqltext
from server.offline import union_into_default

QUERIES = canned.load_all(canned.QUERIES_DIR)
WITH_PATTERNS = [(q, p) for q in QUERIES.values() for p in q.params if p.pattern]


@pytest.fixture(scope="module")
def seed_store(seed_dump: Path) -> ox.Store:
    store = ox.Store()
    store.bulk_load(path=str(seed_dump), format=ox.RdfFormat.TURTLE)
    union_into_default(store)
    return store


def test_some_queries_have_patterns() -> None:
    assert {q.name for q, _ in WITH_PATTERNS} >= {"statistics", "programmes", "places"}


@pytest.mark.parametrize(("cq", "param"), WITH_PATTERNS, ids=lambda x: getattr(x, "name", ""))
def test_pattern_keeps_the_rows(seed_store: ox.Store, cq, param) -> None:
    """Every entity of the allowed classes as the value: the same rows, in the same order."""
    classes = param.classes or []
    types = " ".join(f"<{canned.JC}{c}>" for c in classes)
    values = [r[0] for r in seed_store.query(
        f"SELECT DISTINCT ?e WHERE {{ ?e a ?t {'VALUES ?t { ' + types + ' }' if types else ''} }}"
    )]  # fmt: skip
    assert len(values) > 20
    nonempty = 0
    for value in values:
        bindings = {param.var: value}
        plain = [tuple(map(str, r)) for r in seed_store.query(
            sparqltext.inject_values(cq.text, bindings))]  # fmt: skip
        fast = [tuple(map(str, r)) for r in seed_store.query(
            sparqltext.inject_values(cq.text, bindings, [param.pattern]))]  # fmt: skip
        assert fast == plain, value
        nonempty += bool(plain)
    assert nonempty >= 3  # the comparison saw real rows, not only empty answers


def test_pattern_must_use_its_parameter(tmp_path: Path) -> None:
    rq = tmp_path / "bad.rq"
    rq.write_text(
        '#+ params:\n#+   x:\n#+     type: entity\n#+     pattern: "?s ?p ?o ."\n'
        "SELECT ?s WHERE { ?s ?p ?__x_iri }\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="does not use"):
        canned.parse(rq)
