"""The server over the real graph built from seeds/ (the ``seed_dump`` fixture)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def real_server(seed_dump) -> Iterator[RunningServer]:
    server = start_server(seed_dump, ready_timeout=180)
    yield server
    stop_server(server)


def rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def test_counts_and_home(real_server: RunningServer) -> None:
    r = httpx.get(
        real_server.url + "/sparql", params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}
    )
    assert int(r.json()["results"]["bindings"][0]["n"]["value"]) > 1000
    assert httpx.get(real_server.url + "/", headers={"Accept": "text/html"}).status_code == 200


@pytest.mark.parametrize(
    "name", ["temporary-party-branches", "party-secretaries", "programmes", "places", "statistics"]
)
def test_canned_queries_answer_quickly(real_server: RunningServer, name: str) -> None:
    t = time.monotonic()
    result = rows(httpx.get(f"{real_server.url}/queries/{name}.csv", timeout=30))
    assert time.monotonic() - t < 5
    assert result, f"{name} found nothing in the real graph"


def test_entity_pages_and_name_resolution(real_server: RunningServer) -> None:
    places = rows(httpx.get(f"{real_server.url}/queries/places.csv", timeout=30))
    street = next(p for p in places if p["placeType"] == "Street")
    r = httpx.get(f"{real_server.url}/queries/places.csv", params={"within": street["placeLabel"]})
    assert r.status_code in (200, 300)
    path = street["place"].split("/resource/", 1)[1]
    r = httpx.get(f"{real_server.url}/resource/{path}", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200 and street["placeLabel"] in r.text
    r = httpx.get(
        f"{real_server.url}/resource/{path}", headers={"Accept": "text/turtle"}, timeout=30
    )
    assert r.status_code == 200


def test_dump_round_trip(real_server: RunningServer) -> None:
    r = httpx.get(f"{real_server.url}/dump.nt", timeout=60)
    assert r.status_code == 200 and r.headers["etag"]
    assert len(r.text.splitlines()) > 1000
