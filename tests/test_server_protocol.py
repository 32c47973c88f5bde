"""SPARQL 1.1 Protocol, content negotiation, safety limits — against a real server."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import rdflib

from tests.conftest import UPDATE_TOKEN, RunningServer

JC = "https://w3id.org/jiceng/ontology#"
RES = "https://w3id.org/jiceng/resource/"
STREETS = f"SELECT ?s WHERE {{ ?s a <{JC}Street> }} ORDER BY ?s"
CONSTRUCT = f"CONSTRUCT {{ ?s a <{JC}Street> }} WHERE {{ ?s a <{JC}Street> }}"
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"


def streets_json(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [b["s"]["value"] for b in r.json()["results"]["bindings"]]


EXPECTED_STREETS = [f"{RES}street/huayuanlu-jiedao", f"{RES}street/jianshelu-jiedao"]


# -- query forms and transports -------------------------------------------------------------


def test_get_query_default_json(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": STREETS})
    assert r.headers["content-type"].startswith("application/sparql-results+json")
    assert streets_json(r) == EXPECTED_STREETS
    assert "truncated" not in r.json()
    assert "x-jiceng-truncated" not in r.headers


def test_post_form_and_direct(client: httpx.Client) -> None:
    r = client.post("/sparql", data={"query": STREETS})
    assert streets_json(r) == EXPECTED_STREETS
    r = client.post(
        "/sparql", content=STREETS.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    assert streets_json(r) == EXPECTED_STREETS


def test_post_unknown_content_type(client: httpx.Client) -> None:
    r = client.post("/sparql", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_ask(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": f"ASK {{ ?s a <{JC}Street> }}"})
    assert r.json() == {"head": {}, "boolean": True}
    r = client.get("/sparql", params={"query": "ASK { ?s a <urn:nothing> }", "format": "xml"})
    assert (
        ET.fromstring(r.content).find("{http://www.w3.org/2005/sparql-results#}boolean").text
        == "false"
    )


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/sparql-results+xml", "application/sparql-results+xml"),
        ("text/csv", "text/csv"),
        ("text/tab-separated-values", "text/tab-separated-values"),
        ("application/json", "application/sparql-results+json"),
        ("text/html;q=0.9, text/csv", "text/csv"),
        ("*/*", "application/sparql-results+json"),
    ],
)
def test_select_accept(client: httpx.Client, accept: str, media: str) -> None:
    r = client.get("/sparql", params={"query": STREETS}, headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media)
    if media.endswith("xml"):
        ns = "{http://www.w3.org/2005/sparql-results#}"
        uris = [u.text for u in ET.fromstring(r.content).iter(ns + "uri")]
        assert uris == EXPECTED_STREETS
    elif media == "text/csv":
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows == [["s"], *[[s] for s in EXPECTED_STREETS]]
    elif media == "text/tab-separated-values":
        assert r.text.splitlines() == ["?s", *[f"<{s}>" for s in EXPECTED_STREETS]]


def test_format_override_beats_accept(client: httpx.Client) -> None:
    r = client.get(
        "/sparql",
        params={"query": STREETS, "format": "csv"},
        headers={"Accept": "application/json"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    r = client.get("/sparql", params={"query": STREETS, "format": "tsv"})
    assert r.headers["content-type"].startswith("text/tab-separated-values")


@pytest.mark.parametrize(
    ("accept", "fmt", "rdflib_format"),
    [
        (None, None, "turtle"),
        ("text/turtle", None, "turtle"),
        ("application/n-triples", None, "nt"),
        ("application/ld+json", None, "json-ld"),
        ("application/rdf+xml", None, "xml"),
        ("application/json", "jsonld", "json-ld"),
        (None, "ntriples", "nt"),
        (None, "rdfxml", "xml"),
    ],
)
def test_construct_formats(
    client: httpx.Client, accept: str | None, fmt: str | None, rdflib_format: str
) -> None:
    params = {"query": CONSTRUCT} | ({"format": fmt} if fmt else {})
    headers = {"Accept": accept} if accept else {}
    r = client.get("/sparql", params=params, headers=headers)
    assert r.status_code == 200, r.text
    g = rdflib.Graph().parse(data=r.content, format=rdflib_format)
    assert sorted(str(s) for s in g.subjects()) == EXPECTED_STREETS


def test_describe(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": f"DESCRIBE <{RES}person/zhang-san>"})
    g = rdflib.Graph().parse(data=r.text, format="turtle")
    assert (
        rdflib.URIRef(f"{RES}person/zhang-san"),
        rdflib.RDFS.label,
        rdflib.Literal("张三", lang="zh"),
    ) in g


@pytest.mark.parametrize(
    ("query", "params", "accept"),
    [
        (STREETS, {}, "image/png"),
        (STREETS, {"format": "turtle"}, None),
        (CONSTRUCT, {}, "text/csv"),
        (CONSTRUCT, {"format": "json"}, None),
    ],
)
def test_not_acceptable(client: httpx.Client, query: str, params: dict, accept: str | None) -> None:
    r = client.get(
        "/sparql", params={"query": query, **params}, headers={"Accept": accept} if accept else {}
    )
    assert r.status_code == 406
    assert "available" in r.text


def test_malformed_query(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": "SELECT ?s WHERE { ?s ?p }"})
    assert r.status_code == 400
    assert r.text.startswith("malformed SPARQL: error at 1:")


def test_overlong_query(client: httpx.Client) -> None:
    long_query = "SELECT * WHERE { ?s ?p ?o } #" + "x" * (65 * 1024)
    r = client.post(
        "/sparql", content=long_query.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    assert r.status_code == 413
    r = client.post("/sparql", data={"query": long_query})
    assert r.status_code == 413


def test_cors(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": "ASK {}"}, headers={"Origin": "http://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    r = client.options(
        "/sparql",
        headers={
            "Origin": "http://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 200
    assert "POST" in r.headers["access-control-allow-methods"]


# -- service description, VoID, dumps -----------------------------------------------------------


def test_service_description(client: httpx.Client, base_url: str) -> None:
    r = client.get("/sparql", headers={"Accept": "text/turtle"})
    assert r.headers["content-type"].startswith("text/turtle")
    g = rdflib.Graph().parse(data=r.text, format="turtle")
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (rdflib.URIRef(f"{base_url}/sparql"), rdflib.RDF.type, sd.Service) in g
    assert (None, sd.endpoint, rdflib.URIRef(f"{base_url}/sparql")) in g
    assert (None, sd.supportedLanguage, sd.SPARQL11Update) in g  # this server has a token
    r = client.get("/sparql", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/")


def test_void(client: httpx.Client) -> None:
    r = client.get("/.well-known/void")
    assert r.headers["content-type"].startswith("text/turtle")
    g = rdflib.Graph().parse(data=r.text, format="turtle")
    void = rdflib.Namespace("http://rdfs.org/ns/void#")
    ds = next(g.subjects(rdflib.RDF.type, void.Dataset))
    triples = int(g.value(ds, void.triples))
    count = client.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json()
    assert triples == int(count["results"]["bindings"][0]["n"]["value"]) > 200
    for p in (void.entities, void.classes, void.properties):
        assert int(g.value(ds, p)) > 0
    classes = {
        str(g.value(part, void["class"])): int(g.value(part, void.entities))
        for part in g.objects(ds, void.classPartition)
    }
    assert classes[f"{JC}Street"] == 2
    props = {str(g.value(p, void.property)) for p in g.objects(ds, void.propertyPartition)}
    assert f"{JC}secretaryOf" in props
    r = client.get("/.well-known/void", headers={"Accept": "application/ld+json"})
    assert r.headers["content-type"].startswith("application/ld+json")
    assert len(rdflib.Graph().parse(data=r.text, format="json-ld")) == len(g)


@pytest.mark.parametrize(("ext", "fmt"), [("ttl", "turtle"), ("nt", "nt"), ("jsonld", "json-ld")])
def test_dump_etag(client: httpx.Client, ext: str, fmt: str) -> None:
    r = client.get(f"/dump.{ext}")
    assert r.status_code == 200
    g = rdflib.Graph().parse(data=r.content, format=fmt)
    assert len(g) > 200
    etag = r.headers["etag"]
    r2 = client.get(f"/dump.{ext}", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and not r2.content
    assert client.get(f"/dump.{ext}", headers={"If-None-Match": '"other"'}).status_code == 200


# -- safety ----------------------------------------------------------------------------------------


class Listener:
    """A TCP listener on 127.0.0.1 that records any connection it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        time.sleep(0.5)  # give a stray connection time to arrive before we look
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        "select * where {{ service silent <{url}> {{ ?s ?p ?o }} }}",
        "SELECT * WHERE {{ ?x ?y ?z . {{ SELECT ?s WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}"
        " }}",
        "SELECT * WHERE {{ \\u0053ERVICE <{url}> {{ ?s ?p ?o }} }}",
        "PREFIX service: <urn:x#>\nSELECT * WHERE {{ SERVICE <{url}> {{ ?s service:p ?o }} }}",
    ],
)
def test_service_refused_without_connection(
    client: httpx.Client, listener: Listener, template: str
) -> None:
    query = template.format(url=f"http://127.0.0.1:{listener.port}/sparql")
    r = client.get("/sparql", params={"query": query})
    assert r.status_code == 400
    assert "SERVICE" in r.text
    listener.close()
    assert listener.connections == 0


def test_service_word_in_names_is_fine(client: httpx.Client) -> None:
    q = (
        "PREFIX service: <urn:x#> SELECT ?service "
        'WHERE { BIND("SERVICE <http://x/>" AS ?service) } # SERVICE'
    )
    r = client.get("/sparql", params={"query": q})
    assert r.status_code == 200


def test_from_and_dataset_params_never_fetch(client: httpx.Client, listener: Listener) -> None:
    url = f"http://127.0.0.1:{listener.port}/graph"
    r = client.get(
        "/sparql",
        params={"query": f"SELECT * FROM <{url}> FROM NAMED <{url}> WHERE {{ ?s ?p ?o }}"},
    )
    assert r.status_code == 200 and r.json()["results"]["bindings"] == []
    r = client.get(
        "/sparql",
        params={
            "query": "SELECT * WHERE { ?s ?p ?o }",
            "default-graph-uri": url,
            "named-graph-uri": url,
        },
    )
    assert r.status_code == 200 and r.json()["results"]["bindings"] == []
    listener.close()
    assert listener.connections == 0


def test_update_refused_without_token(client: httpx.Client) -> None:
    upd = "INSERT DATA { <urn:x:a> <urn:x:b> <urn:x:c> }"
    r = client.post(
        "/sparql", content=upd.encode(), headers={"Content-Type": "application/sparql-update"}
    )
    assert r.status_code == 403
    r = client.post("/sparql", data={"update": upd}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403
    r = client.get("/sparql", params={"query": "ASK { <urn:x:a> ?p ?o }"})
    assert r.json()["boolean"] is False


def test_update_disabled_without_configured_token(jiceng_server_strict: RunningServer) -> None:
    r = httpx.post(
        f"{jiceng_server_strict.url}/sparql",
        data={"update": "CLEAR ALL"},
        headers={"Authorization": "Bearer anything"},
    )
    assert r.status_code == 403


def test_update_with_token_and_dataset(client: httpx.Client, listener: Listener) -> None:
    auth = {"Authorization": f"Bearer {UPDATE_TOKEN}"}
    etag = client.get("/dump.nt").headers["etag"]
    upd = 'INSERT DATA { GRAPH <urn:test:g> { <urn:x:a> <urn:x:b> "测试"@zh } }'
    r = client.post(
        "/sparql",
        content=upd.encode(),
        headers={"Content-Type": "application/sparql-update", **auth},
    )
    assert r.status_code == 204, r.text
    try:
        # default-graph-uri selects the named graph as the default graph
        r = client.get(
            "/sparql", params={"query": "SELECT ?o { ?s ?p ?o }", "default-graph-uri": "urn:test:g"}
        )
        assert [b["o"]["value"] for b in r.json()["results"]["bindings"]] == ["测试"]
        r = client.get(
            "/sparql",
            params={
                "query": "SELECT ?g { GRAPH ?g { ?s ?p ?o } }",
                "named-graph-uri": "urn:test:g",
            },
        )
        assert {b["g"]["value"] for b in r.json()["results"]["bindings"]} == {"urn:test:g"}
        r = client.get(
            "/sparql",
            params={"query": "SELECT ?o { ?s ?p ?o }", "default-graph-uri": "urn:test:none"},
        )
        assert r.json()["results"]["bindings"] == []
        # LOAD would fetch: refused even with the token
        r = client.post(
            "/sparql",
            data={"update": f"LOAD <http://127.0.0.1:{listener.port}/x.ttl>"},
            headers=auth,
        )
        assert r.status_code == 400
        r = client.post("/sparql", data={"update": "INSERT DATA { <urn:a> }"}, headers=auth)
        assert r.status_code == 400 and "malformed" in r.text
    finally:
        r = client.post("/sparql", data={"update": "DROP GRAPH <urn:test:g>"}, headers=auth)
        assert r.status_code == 204
    assert client.get("/dump.nt").headers["etag"] == etag  # default graph unchanged
    listener.close()
    assert listener.connections == 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def test_timeout_kills_query_and_server_keeps_answering(jiceng_server: RunningServer) -> None:
    url = jiceng_server.url
    before = len(_descendants(jiceng_server.pid))
    result: dict[str, httpx.Response] = {}

    def heavy() -> None:
        result["r"] = httpx.get(
            f"{url}/sparql", params={"query": HEAVY, "timeout": "2"}, timeout=30
        )

    t0 = time.monotonic()
    thread = threading.Thread(target=heavy)
    thread.start()
    time.sleep(0.3)
    # meanwhile, other queries are answered promptly
    for _ in range(3):
        t = time.monotonic()
        r = httpx.get(f"{url}/sparql", params={"query": STREETS}, timeout=10)
        assert streets_json(r) == EXPECTED_STREETS
        assert time.monotonic() - t < 1.5
    thread.join(timeout=20)
    elapsed = time.monotonic() - t0
    r = result["r"]
    assert r.status_code == 503
    assert "time limit" in r.text
    assert 1.5 < elapsed < 6
    r = httpx.get(f"{url}/sparql", params={"query": STREETS}, timeout=10)
    assert streets_json(r) == EXPECTED_STREETS
    # the overrun worker was killed and replaced: no extra process is left running
    deadline = time.monotonic() + 5
    while len(_descendants(jiceng_server.pid)) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_descendants(jiceng_server.pid)) == before


def test_timeout_param_validation(client: httpx.Client) -> None:
    assert client.get("/sparql", params={"query": "ASK {}", "timeout": "abc"}).status_code == 400
    assert client.get("/sparql", params={"query": "ASK {}", "timeout": "-1"}).status_code == 400


def test_row_limit_truncation(jiceng_server_strict: RunningServer) -> None:
    url = f"{jiceng_server_strict.url}/sparql"
    r = httpx.get(url, params={"query": "SELECT * { ?s ?p ?o }"})
    assert r.headers["x-jiceng-truncated"] == "true"
    doc = r.json()
    assert doc["truncated"] is True and len(doc["results"]["bindings"]) == 5
    r = httpx.get(url, params={"query": "SELECT * { ?s ?p ?o }", "format": "csv"})
    assert r.headers["x-jiceng-truncated"] == "true" and len(r.text.strip().splitlines()) == 6
    r = httpx.get(
        url, params={"query": "CONSTRUCT { ?s ?p ?o } { ?s ?p ?o }", "format": "ntriples"}
    )
    assert r.headers["x-jiceng-truncated"] == "true" and len(r.text.strip().splitlines()) == 5
    r = httpx.get(url, params={"query": "SELECT * { ?s ?p ?o } LIMIT 5"})
    assert "x-jiceng-truncated" not in r.headers and "truncated" not in r.json()


def test_json_results_are_valid_sparql_json(client: httpx.Client) -> None:
    r = client.get(
        "/sparql",
        params={
            "query": f"SELECT ?l ?n WHERE {{ <{RES}statistic/900_aaaa-1> "
            f"<{JC}measure> ?l ; <{JC}quantity> ?n }}"
        },
    )
    b = r.json()["results"]["bindings"][0]
    assert b["l"] == {"type": "literal", "value": "成立临时党组织", "xml:lang": "zh"}
    assert b["n"] == {
        "type": "literal",
        "value": "120",
        "datatype": "http://www.w3.org/2001/XMLSchema#decimal",
    }
    json.dumps(r.json())
