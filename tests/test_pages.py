"""HTML pages and resource dereferencing (HTTP level; see test_pages_browser for Chromium)."""

from __future__ import annotations

import re

import httpx
import rdflib

RES = "https://w3id.org/jiceng/resource/"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_home_page(client: httpx.Client) -> None:
    r = client.get("/", headers=HTML)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert re.search(r'id="count-triples">\d+<', r.text)
    for name in ("temporary-party-branches", "party-secretaries", "entity"):
        assert f'href="/queries/{name}"' in r.text
    # every asset is local
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert assets and all(a.startswith("/") or a.startswith("#") for a in assets), assets
    assert client.get("/static/yasgui/yasgui.min.js").status_code == 200
    assert client.get("/static/app.js").status_code == 200


def test_resource_html_shows_evidence(client: httpx.Client) -> None:
    r = client.get("/resource/person/zhang-san", headers=HTML)
    assert r.status_code == 200
    assert '<h1 id="label">张三</h1>' in r.text
    assert "jc:Person" in r.text
    assert "<mark>张三</mark>" in r.text  # the entity highlighted in its evidence sentence
    assert 'href="/resource/street/huayuanlu-jiedao"' in r.text
    assert "<svg" in r.text and "花园路街道" in r.text
    r = client.get("/resource/street/huayuanlu-jiedao", headers=HTML)
    assert "←" in r.text and 'href="/resource/person/zhang-san"' in r.text  # incoming secretaryOf


def test_resource_rdf_by_accept_and_suffix(client: httpx.Client) -> None:
    me = rdflib.URIRef(RES + "person/zhang-san")
    for accept, fmt in (
        ("text/turtle", "turtle"),
        ("application/ld+json", "json-ld"),
        ("application/n-triples", "nt"),
    ):
        r = client.get("/resource/person/zhang-san", headers={"Accept": accept})
        assert r.headers["content-type"].startswith(accept)
        g = rdflib.Graph().parse(data=r.text, format=fmt)
        assert (me, rdflib.RDFS.label, rdflib.Literal("张三", lang="zh")) in g
    g = rdflib.Graph().parse(
        data=client.get("/resource/person/zhang-san.ttl").text, format="turtle"
    )
    assert (me, None, None) in g
    r = client.get("/resource/person/zhang-san.csv")
    assert r.headers["content-type"].startswith("text/csv") and "secretaryOf" in r.text
    r = client.get("/resource/person/zhang-san.json")
    assert r.json()["results"]["bindings"]


def test_resource_unknown(client: httpx.Client) -> None:
    assert client.get("/resource/person/nobody", headers=HTML).status_code == 404
    assert (
        client.get("/resource/person/nobody", headers={"Accept": "text/turtle"}).status_code == 404
    )
    assert (
        client.get("/resource/person/zhang-san", headers={"Accept": "image/png"}).status_code == 406
    )


def test_canned_html_page(client: httpx.Client) -> None:
    r = client.get("/queries/temporary-party-branches", params={"district": "金水"}, headers=HTML)
    assert r.status_code == 200
    assert 'id="rowcount">1<' in r.text
    assert "花园路街道防疫临时党支部" in r.text
    assert "SELECT DISTINCT ?place" in r.text  # shows its SPARQL
    assert 'href="/queries/temporary-party-branches.csv?district=' in r.text
    r = client.get("/queries/entity", params={"name": "查无此人"}, headers=HTML)
    assert r.status_code == 404 and 'class="error"' in r.text
