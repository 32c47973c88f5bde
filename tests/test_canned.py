"""Canned queries: parsing, binding, name resolution, HTTP routes and the offline runner."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from server import canned, sparqltext
from server.offline import QueryError, load_store, run_canned

RES = "https://w3id.org/jiceng/resource/"
SPEC_COLUMNS = {
    "temporary-party-branches": [
        "place",
        "placeLabel",
        "placeType",
        "district",
        "districtLabel",
        "branchLabel",
        "evidence",
        "document",
    ],
    "party-secretaries": [
        "person",
        "personLabel",
        "role",
        "unit",
        "unitLabel",
        "unitType",
        "district",
        "districtLabel",
        "document",
    ],
    "programmes": ["programme", "programmeLabel", "adopter", "adopterLabel", "evidence"],
    "places": ["place", "placeLabel", "placeType", "parent", "parentLabel", "adminCode"],
    "statistics": ["subject", "measure", "quantity", "unit", "qualifier", "evidence"],
    "entity": ["entity", "property", "value", "evidence"],
    "evidence": ["subject", "predicate", "object", "evidence", "sentenceText", "document"],
}
SPEC_PARAMS = {
    "temporary-party-branches": {"district"},
    "party-secretaries": {"district", "unitType"},
    "programmes": {"adopter"},
    "places": {"within"},
    "entity": {"name"},
    "evidence": {"name", "other"},
    "statistics": {"about"},
}
# A value for each parameter that resolves on the fixture graph, and the rows it keeps.
GOOD_ARGS = {
    "temporary-party-branches": ({"district": "金水"}, 1),
    "party-secretaries": ({"district": "金水区", "unitType": "Street"}, 1),
    "programmes": ({"adopter": "花园路"}, 1),
    "places": ({"within": "花园路街道"}, 1),
    "entity": ({"name": "张三"}, None),
    "evidence": ({"name": "张三", "other": "花园路街道"}, 1),
    "statistics": ({"about": "金水区"}, 1),
}
NASTY = ['x"} ?s ?p ?o {', "金水区> } UNION { ?s ?p ?o", "'\"}><\\u0022", "<https://w3id.org/x> }#"]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- parsing and text handling (no server) ------------------------------------------------------


def test_queries_parse_with_spec_columns_and_params() -> None:
    queries = canned.load_all()
    assert set(SPEC_COLUMNS) <= set(queries)
    for name, cols in SPEC_COLUMNS.items():
        cq = queries[name]
        assert cq.summary and cq.description
        assert [c for c in cq.columns if c in cols] == cols, name
        assert {p.name for p in cq.params} == SPEC_PARAMS[name]
    assert queries["entity"].param("name").required
    assert not queries["evidence"].param("other").required
    assert queries["party-secretaries"].param("unitType").enum


def test_grlc_header_forms(tmp_path: Path) -> None:
    (tmp_path / "q.rq").write_text(
        "#+ summary: test\n#+ tags:\n#+   - a\n#+ defaults:\n#+   - n: 3\n"
        "#+ enumerate:\n#+   - lang: [zh, en]\n"
        "SELECT ?x WHERE { BIND(?_n_integer AS ?x) FILTER(!BOUND(?__lang) || ?__lang = 'zh') }\n",
        encoding="utf-8",
    )
    cq = canned.parse(tmp_path / "q.rq")
    assert cq.tags == ["a"]
    n, lang = cq.param("n"), cq.param("lang")
    assert (n.type, n.default, n.required) == ("integer", "3", False)
    assert (lang.required, lang.enum) == (False, ["zh", "en"])
    store = ox.Store()
    text = canned.prepare(cq, {}, canned.NameIndex([]))
    assert [s["x"].value for s in store.query(text)] == ["3"]
    with pytest.raises(canned.CannedError) as err:
        canned.prepare(cq, {"n": "3 } ?a"}, canned.NameIndex([]))
    assert err.value.status == 400


def test_mask_and_forbidden_keyword() -> None:
    assert (
        sparqltext.forbidden_keyword("SELECT * { SERVICE <http://x/> { ?s ?p ?o } }") == "SERVICE"
    )
    assert sparqltext.forbidden_keyword("select * { service silent <http://x/> {} }") == "SERVICE"
    assert sparqltext.forbidden_keyword("SELECT * { \\u0053ERVICE <http://x/> {} }") == "SERVICE"
    assert (
        sparqltext.forbidden_keyword('SELECT ?service { BIND("SERVICE" AS ?service) } # SERVICE')
        is None
    )
    assert (
        sparqltext.forbidden_keyword(
            "PREFIX service: <urn:x> SELECT * { ?s service:p ex:my-service }"
        )
        is None
    )
    assert sparqltext.forbidden_keyword("LOAD <http://x/>", ("SERVICE", "LOAD")) == "LOAD"
    assert (
        sparqltext.query_form("# SELECT\nCONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }") == "CONSTRUCT"
    )


def test_inject_values_binds_terms_not_text() -> None:
    q = 'SELECT ?x WHERE { FILTER(!BOUND(?_v) || ?x = ?_v) VALUES ?x { "a" "b" } }'
    store = ox.Store()
    nasty = ox.Literal('a"} UNION { BIND("b" AS ?x) }')
    out = sparqltext.inject_values(q, {"_v": nasty})
    assert list(store.query(out)) == []
    out = sparqltext.inject_values(q, {"_v": ox.Literal("a")})
    assert [s["x"].value for s in store.query(out)] == ["a"]
    c = "CONSTRUCT { ?x ?x ?x } WHERE { BIND(?_v AS ?x) }"
    assert "WHERE { VALUES" in sparqltext.inject_values(c, {"_v": ox.NamedNode("urn:a")})


def test_name_index_resolution() -> None:
    store = load_store(Path(__file__).parent / "fixtures" / "server_sample.ttl")
    from server import jobs

    index = canned.NameIndex(
        jobs.run_rows(store, {"query": canned.INDEX_QUERY, "max_rows": 10**6})["rows"]
    )
    assert index.resolve("p", "花园路街道", None).iri == RES + "street/huayuanlu-jiedao"
    assert (
        index.resolve("p", "花园路", None).iri == RES + "street/huayuanlu-jiedao"
    )  # suffix dropped
    assert (
        index.resolve("p", "花园路办事处", None).iri == RES + "street/huayuanlu-jiedao"
    )  # altLabel
    assert index.resolve("p", "street/huayuanlu-jiedao", None).type == "Street"
    assert index.resolve("p", RES + "person/zhang-san", ["Person"]).label == "张三"
    with pytest.raises(canned.Ambiguous) as amb:
        index.resolve("p", "幸福社区", None)
    assert {c.iri for c in amb.value.candidates} == {
        RES + "community/xingfu-shequ",
        RES + "community/xingfu-shequ-4101030050",
    }
    with pytest.raises(canned.CannedError) as err:
        index.resolve("p", "张三", ["District"])  # wrong kind
    assert err.value.status == 404
    with pytest.raises(canned.CannedError):
        index.resolve("p", "不存在的地方", None)


# -- offline runner ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(server_sample_ttl: Path) -> ox.Store:
    return load_store(server_sample_ttl)


def test_offline_runner(store: ox.Store) -> None:
    rows = read_csv(run_canned(store, "temporary-party-branches", {"district": "金水"}, "csv"))
    assert [r["placeLabel"] for r in rows] == ["花园路街道"]
    assert "花园路街道" in run_canned(store, "places", {}, "table")
    assert '"head"' in run_canned(store, "programmes", {}, "json")
    for name, params, msg in [
        ("nope", {}, "no canned query"),
        ("places", {"bogus": "1"}, "unknown parameter"),
        ("entity", {}, "missing required"),
        ("entity", {"name": "幸福社区"}, "ambiguous"),
        ("entity", {"name": "无此人"}, "nothing named"),
    ]:
        with pytest.raises(QueryError) as err:
            run_canned(store, name, params, "csv")
        assert msg in str(err.value) and "\n" not in str(err.value)


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPEC_COLUMNS))
def test_canned_without_params(client: httpx.Client, name: str) -> None:
    r = client.get(f"/queries/{name}.csv")
    if name in ("entity", "evidence"):
        assert r.status_code == 400 and "missing required parameter 'name'" in r.text
        return
    assert r.status_code == 200, r.text
    rows = read_csv(r.text)
    assert rows, name
    assert all(c in rows[0] for c in SPEC_COLUMNS[name])


@pytest.mark.parametrize("name", sorted(SPEC_COLUMNS))
def test_canned_with_params(client: httpx.Client, name: str, store: ox.Store) -> None:
    args, expected = GOOD_ARGS[name]
    r = client.get(f"/queries/{name}.csv", params=args)
    assert r.status_code == 200, r.text
    rows = read_csv(r.text)
    if expected is not None:
        assert len(rows) == expected, rows
    # the server and the offline runner agree
    assert rows == read_csv(run_canned(store, name, args, "csv"))


def test_canned_results_content(client: httpx.Client) -> None:
    rows = read_csv(client.get("/queries/temporary-party-branches.csv").text)
    assert [(r["placeLabel"], r["placeType"], r["districtLabel"]) for r in rows] == [
        ("城关乡", "Township", "新郑市"),
        ("花园路街道", "Street", "金水区"),
    ]
    assert rows[1]["evidence"] == "街道在各小区成立了防疫临时党支部"
    assert rows[1]["document"] == RES + "document/900_aaaa"
    rows = read_csv(
        client.get("/queries/party-secretaries.csv", params={"unitType": "Enterprise"}).text
    )
    assert [(r["personLabel"], r["unitLabel"], r["districtLabel"]) for r in rows] == [
        ("王五", "星光科技公司", "金水区")
    ]
    rows = read_csv(client.get("/queries/party-secretaries.csv", params={"district": "新郑"}).text)
    assert [(r["personLabel"], r["role"]) for r in rows] == [("李四", "党委书记")]
    rows = read_csv(client.get("/queries/statistics.csv").text)
    assert (rows[0]["quantity"], rows[0]["unit"], rows[0]["qualifier"]) == ("120", "个", "多")
    rows = read_csv(client.get("/queries/entity.csv", params={"name": "张三"}).text)
    sec = [r for r in rows if r["property"].endswith("#secretaryOf")]
    assert sec[0]["value"] == RES + "street/huayuanlu-jiedao"
    assert "张三" in sec[0]["sentenceText"] and sec[0]["evidence"] == "花园路街道党工委书记张三"


@pytest.mark.parametrize("name", sorted(SPEC_PARAMS))
@pytest.mark.parametrize("nasty", NASTY)
def test_nasty_values_never_alter_the_query(client: httpx.Client, name: str, nasty: str) -> None:
    for param in SPEC_PARAMS[name]:
        args = dict(GOOD_ARGS[name][0])
        args[param] = nasty
        r = client.get(f"/queries/{name}.json", params=args)
        assert r.status_code in (200, 404), (param, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json()["results"]["bindings"] == []
        else:
            assert "nasty" not in r.text and r.text.strip()


def test_ambiguous_and_unknown(client: httpx.Client) -> None:
    r = client.get(
        "/queries/entity", params={"name": "幸福社区"}, headers={"Accept": "application/json"}
    )
    assert r.status_code == 300
    body = r.json()
    assert body["error"] == "ambiguous" and body["param"] == "name"
    assert {(c["label"], c["type"]) for c in body["candidates"]} == {("幸福社区", "Community")}
    assert len(body["candidates"]) == 2
    r = client.get("/queries/entity", params={"name": "幸福社区"}, headers={"Accept": "text/html"})
    assert r.status_code == 300 and "community/xingfu-shequ-4101030050" in r.text
    r = client.get("/queries/entity.csv", params={"name": "查无此人"})
    assert r.status_code == 404 and "查无此人" in r.text
    r = client.get("/queries/places.csv", params={"nope": "1"})
    assert r.status_code == 400 and "unknown parameter" in r.text
    assert client.get("/queries/no-such-query").status_code == 404
    r = client.get("/queries/party-secretaries.csv", params={"unitType": "Planet"})
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("suffix", "accept", "media"),
    [
        (".csv", None, "text/csv"),
        (".tsv", None, "text/tab-separated-values"),
        (".json", None, "application/json"),
        ("", "text/csv", "text/csv"),
        ("", "application/json", "application/json"),
        ("", "text/html", "text/html"),
        ("", None, "application/json"),
    ],
)
def test_canned_formats(client: httpx.Client, suffix: str, accept: str | None, media: str) -> None:
    r = client.get(f"/queries/places{suffix}", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media)
    assert "花园路街道" in r.text


def test_canned_not_acceptable_and_sparql_source(client: httpx.Client) -> None:
    assert client.get("/queries/places", headers={"Accept": "image/png"}).status_code == 406
    r = client.get("/queries/places.rq")
    assert r.text == (Path(canned.QUERIES_DIR) / "places.rq").read_text(encoding="utf-8")


def test_canned_etag(client: httpx.Client) -> None:
    r = client.get("/queries/programmes.csv")
    etag = r.headers["etag"]
    r2 = client.get("/queries/programmes.csv", headers={"If-None-Match": etag})
    assert r2.status_code == 304


def test_queries_listing_and_openapi(client: httpx.Client) -> None:
    listing = client.get("/queries").json()
    assert client.get("/queries.json").json() == listing
    names = {q["name"] for q in listing}
    assert set(SPEC_COLUMNS) <= names
    ent = next(q for q in listing if q["name"] == "entity")
    assert ent["params"][0]["name"] == "name" and ent["params"][0]["required"]
    html = client.get("/queries", headers={"Accept": "text/html"}).text
    assert "temporary-party-branches" in html
    schema = client.get("/openapi.json").json()
    for name, params in SPEC_PARAMS.items():
        op = schema["paths"][f"/queries/{name}"]["get"]
        assert op["operationId"] == name and op["summary"]
        documented = {p["name"] for p in op["parameters"]}
        assert params <= documented
    op = schema["paths"]["/queries/party-secretaries"]["get"]
    unit = next(p for p in op["parameters"] if p["name"] == "unitType")
    assert "Street" in str(unit["schema"])
    assert client.get("/docs").status_code == 200


SAMPLE = Path(__file__).parent / "fixtures" / "sample.ttl"


@pytest.mark.skipif(not SAMPLE.exists(), reason="tests/fixtures/sample.ttl not written yet")
def test_canned_queries_on_the_shared_sample() -> None:
    """The ontology team's sample follows the same README: every query finds something."""
    store = load_store(SAMPLE)
    for name in SPEC_COLUMNS:
        params = {"name": "张三"} if name in ("entity", "evidence") else {}
        rows = read_csv(run_canned(store, name, params, "csv"))
        assert rows, name
        assert all(c in rows[0] for c in SPEC_COLUMNS[name]), name
