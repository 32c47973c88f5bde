"""Real third-party clients against the real server: SPARQLWrapper, rdflib, pandas."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

import pandas as pd
import rdflib
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, POST, SPARQLWrapper

JC = "https://w3id.org/jiceng/ontology#"
QUERY = f"""PREFIX jc: <{JC}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?p ?label WHERE {{ ?p a jc:Person ; rdfs:label ?label FILTER(LANG(?label) = "zh") }}
ORDER BY ?label"""
PEOPLE = sorted(["张三", "李四", "王五", "赵六"])


def test_sparqlwrapper_json(base_url: str) -> None:
    sw = SPARQLWrapper(f"{base_url}/sparql")
    sw.setQuery(QUERY)
    sw.setReturnFormat(JSON)
    res = sw.query().convert()
    assert [b["label"]["value"] for b in res["results"]["bindings"]] == PEOPLE
    sw.setMethod(POST)
    res = sw.query().convert()
    assert len(res["results"]["bindings"]) == 4


def test_sparqlwrapper_csv(base_url: str) -> None:
    sw = SPARQLWrapper(f"{base_url}/sparql")
    sw.setQuery(QUERY)
    sw.setReturnFormat(CSV)
    data = sw.query().convert()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert [r["label"] for r in rows] == PEOPLE


def test_rdflib_sparqlstore(base_url: str) -> None:
    store = SPARQLStore(f"{base_url}/sparql", returnFormat="json")
    g = rdflib.Graph(store=store)
    res = list(g.query(QUERY))
    assert [str(r.label) for r in res] == PEOPLE
    assert all(r.label.language == "zh" for r in res)
    assert g.query(f"ASK {{ ?s a <{JC}Street> }}").askAnswer is True
    triples = list(g.triples((None, rdflib.RDF.type, rdflib.URIRef(f"{JC}Street"))))
    assert len(triples) == 2


def test_pandas_reads_canned_csv(base_url: str) -> None:
    url = f"{base_url}/queries/temporary-party-branches.csv?" + urlencode({"district": "金水区"})
    df = pd.read_csv(url)
    assert list(df.columns)[:3] == ["place", "placeLabel", "placeType"]
    assert df["placeLabel"].tolist() == ["花园路街道"]
    df = pd.read_csv(f"{base_url}/queries/places.csv")
    assert {"花园路街道", "金水区"} <= set(df["placeLabel"])
    df = pd.read_json(f"{base_url}/sparql?" + urlencode({"query": QUERY, "format": "json"}))
    assert len(df["results"]["bindings"]) == 4
