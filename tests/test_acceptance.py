"""The acceptance checks of the issues, on the graph built from seeds/.

- Issue 3: "secretaries with their street/town and district" returns all 21 people named
  as 党委书记 or 党工委书记 in the seeds, each with unit and district, and nobody else.
- Issue 4: the temporary-party-branches CSV URL lists every street and town that the seeds
  say set up a temporary Party branch, with its district and the evidence sentence;
  SPARQLWrapper gets the same rows from /sparql; an update is refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError

import httpx
import pyoxigraph as ox
import pytest
from SPARQLWrapper import JSON, POST, SPARQLWrapper

from tests.conftest import ROOT, RunningServer, start_server, stop_server

# Who the seed articles name as 党委书记 / 党工委书记 (read off the articles by hand).
SECRETARIES = {
    "马东亮": ("城关乡", "新郑市"),
    "高留念": ("棉纺路街道", "中原区"),
    "段祥生": ("大河路街道", "惠济区"),
    "张海军": ("航海东路街道", "管城回族区"),
    "李华": ("经八路街道", "金水区"),
    "王东": ("鲁庄镇", "巩义市"),
    "韩迎旭": ("嵩阳街道", "登封市"),
    "曹西峰": ("郑庵镇", "中牟县"),
    "王彬": ("五里堡街道", "二七区"),
    "陈萌": ("龙湖街道", "郑东新区"),
    "李建华": ("建设路街道", "中原区"),
    "孔玉峰": ("卢店镇", "登封市"),
    "刘银华": ("白寨镇", "新密市"),
    "王跃举": ("回郭镇", "巩义市"),
    "苏晋周": ("郑港街道", "郑州航空港经济综合实验区"),
    "禹金丽": ("刘寨街道", "惠济区"),
    "魏喜盈": ("明湖街道", "郑州经济技术开发区"),
    "吉喆": ("贾峪镇", "荥阳市"),
    "赵红林": ("马寨镇", "二七区"),
    "董青丽": ("人民路街道", "金水区"),
    "侯慧芳": ("莲湖街道", "中原区"),
}
# Units the seeds say set up (or ran) a temporary Party branch.
TEMPORARY_BRANCH_UNITS = {
    "建设路街道": "中原区",
    "航海东路街道": "管城回族区",
    "马寨镇": "二七区",
    "人民路街道": "金水区",
}

SECRETARIES_QUERY = (ROOT / "tests" / "fixtures" / "secretaries-with-district.rq").read_text(
    encoding="utf-8"
)


def test_secretaries_with_unit_and_district(seed_dump: Path) -> None:
    store = ox.Store()
    store.bulk_load(path=str(seed_dump), format=ox.RdfFormat.TURTLE)
    found: dict[str, set[tuple[str, str]]] = {}
    for row in store.query(SECRETARIES_QUERY):
        found.setdefault(row["name"].value, set()).add((row["unit"].value, row["district"].value))
    assert set(found) == set(SECRETARIES)
    for person, (unit, district) in SECRETARIES.items():
        assert (unit, district) in found[person], (person, found[person])


@pytest.fixture(scope="module")
def server(seed_dump: Path) -> Iterator[RunningServer]:
    running = start_server(seed_dump, ready_timeout=180)
    yield running
    stop_server(running)


def test_temporary_branch_csv_lists_every_unit_with_district_and_evidence(server) -> None:
    r = httpx.get(f"{server.url}/queries/temporary-party-branches.csv", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    units = {row["placeLabel"]: row for row in rows}
    assert set(units) == set(TEMPORARY_BRANCH_UNITS)
    for unit, district in TEMPORARY_BRANCH_UNITS.items():
        row = units[unit]
        assert row["districtLabel"] == district
        assert "临时党" in row["evidence"] and row["document"].startswith("https://")


def test_sparqlwrapper_gets_the_same_rows_from_sparql(server) -> None:
    canned = httpx.get(f"{server.url}/queries/temporary-party-branches.json", timeout=30).json()
    text = httpx.get(f"{server.url}/queries/temporary-party-branches.rq", timeout=30).text
    assert "SELECT" in text
    sw = SPARQLWrapper(f"{server.url}/sparql")
    sw.setQuery(text)
    sw.setReturnFormat(JSON)
    direct = sw.query().convert()

    def as_set(doc: dict) -> set[tuple]:
        return {tuple(sorted((k, v["value"]) for k, v in b.items()))
                for b in doc["results"]["bindings"]}  # fmt: skip

    assert as_set(direct) == as_set(canned)


def test_an_update_is_refused(server) -> None:
    sw = SPARQLWrapper(f"{server.url}/sparql")
    sw.setMethod(POST)
    sw.setQuery("INSERT DATA { <urn:a> <urn:b> <urn:c> }")
    with pytest.raises(HTTPError) as refused:  # SPARQLWrapper passes a 403 through as is
        sw.query()
    assert refused.value.code == 403
    r = httpx.post(f"{server.url}/sparql", data={"update": "CLEAR ALL"})
    assert r.status_code == 403
    ask = httpx.get(f"{server.url}/sparql", params={"query": "ASK { <urn:a> ?p ?o }"})
    assert ask.json()["boolean"] is False
