"""The extractor on the seeds (against the gold floors) and on articles it has never seen.

The unseen articles under tests/fixtures/unseen/ were written for these tests in the same
register as the seeds but about other cities (洛阳, 武汉): no gazetteer entry helps there,
so what is found comes from the general rules alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.evaluate import evaluate, format_report
from kg.ingest import parse_document
from kg.pipeline import Extractor, build_graph
from kg.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
UNSEEN = ROOT / "tests" / "fixtures" / "unseen"


@pytest.fixture(scope="module")
def unseen():
    _, kg, _ = build_graph(sorted(UNSEEN.glob("*.txt")))
    return kg


def labels(kg, predicate: str) -> set[tuple[str, str]]:
    return {(kg.entities[f.subject].label, kg.entities[f.object].label)
            for f in kg.facts if f.predicate == predicate and f.object}  # fmt: skip


def test_seed_extraction_meets_the_gold_floors() -> None:
    result = evaluate(ROOT / "tests" / "gold", ROOT / "seeds")
    assert result["passed"], format_report(result, errors=True)


def test_secretaries_in_bylines_and_running_text_of_unseen_articles(unseen) -> None:
    assert labels(unseen, "secretaryOf") == {
        ("孟庆华", "道北路街道"),
        ("柴志强", "首阳山街道"),
        ("王建国", "百步亭社区"),
    }


def test_unseen_units_get_their_district_from_the_text(unseen) -> None:
    part_of = labels(unseen, "partOf")
    assert ("道北路街道", "西工区") in part_of
    assert ("首阳山街道", "偃师区") in part_of
    assert ("江岸区", "武汉市") in part_of


def test_temporary_branches_named_by_purpose_or_by_quote(unseen) -> None:
    assert labels(unseen, "establishedBy") == {
        ("“红色引擎”临时党支部", "道北路街道"),
        ("产业临时党支部", "首阳山街道"),
    }


def test_a_count_of_temporary_organisations_is_a_statistic_not_a_branch(unseen) -> None:
    stats = {(v["quantity"], v["unit"]) for v in unseen.statistics.values()}
    assert ("56", "个") in stats
    assert not any(e.label == "临时党组织" for e in unseen.entities.values())


def test_programmes_and_their_adopters(unseen) -> None:
    adopts = labels(unseen, "adopts")
    assert ("道北路街道", "小区议事会") in adopts
    assert ("江岸区委", "红色物业") in adopts
    assert any(p == "网格长制" for _, p in adopts)


def test_the_meeting_and_its_speakers(unseen) -> None:
    events = [e for e in unseen.entities.values() if e.cls == "Event"]
    assert [e.label for e in events] == ["洛阳市2021年第一次乡镇（街道）党（工）委书记工作交流会"]
    assert {s for s, _ in labels(unseen, "spokeAt")} == {"孟庆华", "柴志强"}


def test_no_false_people_or_places_from_common_words() -> None:
    text = (
        "全市乡镇、社区和城区的驻区单位都参与进来。家住小区的李女士说，“四个中原”建设让人高兴。\n"
        "街道党工委书记带队走访，社区党组织书记参加。"
    )
    doc = parse_document(text, "common-words")
    kg = resolve([Extractor().extract(doc)])
    found = {(e.cls, e.label) for e in kg.entities.values()}
    assert found == set(), found
