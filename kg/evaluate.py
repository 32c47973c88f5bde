"""Precision, recall and F1 of the extractor against hand-annotated gold.

Gold files (``tests/gold/{doc}.json``, format in ``tests/gold/README.md``) name
entities and relations as written.  An extracted entity matches a gold one in the
same document when the class is the same and the gold text is one of the entity's
labels (``rdfs:label`` or ``skos:altLabel``), so 郑港 matches the street 郑港街道.
Strings in a file's ``ignore`` list count neither way.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from kg.resolve import KnowledgeGraph

RELATIONS = ("secretaryOf", "temporaryBranch", "partOf", "adopts", "statistics")


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


def _norm(text: str) -> str:
    return re.sub(r"[\s、，,·“”\"'（）()]", "", text)


class _Counts:
    def __init__(self) -> None:
        self.c: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.errors: dict[str, list[str]] = defaultdict(list)

    def add(self, key: str, tp: int = 0, fp: int = 0, fn: int = 0) -> None:
        row = self.c[key]
        row[0] += tp
        row[1] += fp
        row[2] += fn


def _names(kg: KnowledgeGraph, iri: str | None) -> set[str]:
    if iri is None or iri not in kg.entities:
        return set()
    e = kg.entities[iri]
    return {_norm(n) for n in {e.label, *e.alt_labels}}


def _match_pairs(gold: list[tuple[str, str]], got: list[tuple[set[str], set[str]]], counts,
                 key: str, doc: str) -> None:  # fmt: skip
    """Match (a, b) gold pairs against extracted name sets, at the level of entities.

    Gold may write one fact twice with different names for the same entity
    (郑港 / 郑港办事处): an extracted pair matching several gold pairs counts once.
    """
    unused = list(range(len(got)))
    used: set[int] = set()
    for a, b in gold:
        matches = [i for i in range(len(got)) if _norm(a) in got[i][0] and _norm(b) in got[i][1]]
        hit = next((i for i in matches if i in unused), None)
        if hit is None and any(i in used for i in matches):
            continue  # the same fact, already counted under another name
        if hit is None:
            counts.add(key, fn=1)
            counts.errors[key].append(f"{doc} missed {a} -> {b}")
        else:
            unused.remove(hit)
            used.add(hit)
            counts.add(key, tp=1)
    for i in unused:
        counts.add(key, fp=1)
        a = "/".join(sorted(got[i][0]))[:30]
        b = "/".join(sorted(got[i][1]))[:30]
        counts.errors[key].append(f"{doc} spurious {a} -> {b}")


def score(kg: KnowledgeGraph, gold_files: list[Path]) -> dict:
    counts = _Counts()
    for path in gold_files:
        gold = json.loads(path.read_text(encoding="utf-8"))
        doc = gold["doc_id"]
        ignore = {_norm(t) for t in gold.get("ignore", [])}
        gold_ents = {(_norm(e["text"]), e["type"]) for e in gold["entities"]}
        types = {t for _, t in gold_ents} | _ENTITY_CLASSES
        extracted = [e for e in kg.entities.values() if doc in e.documents and e.cls in types]
        # recall
        for text, cls in sorted(gold_ents):
            hit = any(e.cls == cls and text in _names(kg, e.iri) for e in extracted)
            counts.add(f"entity:{cls}", tp=int(hit), fn=int(not hit))
            if not hit:
                counts.errors[f"entity:{cls}"].append(f"{doc} missed {text}")
        # precision
        for e in extracted:
            names = _names(kg, e.iri)
            if any((n, e.cls) in gold_ents for n in names):
                continue
            if names & ignore:
                continue
            counts.add(f"entity:{e.cls}", fp=1)
            counts.errors[f"entity:{e.cls}"].append(f"{doc} spurious {e.label}")
        _score_relations(kg, gold, counts)
    return _summarise(counts)


def _pairs(kg: KnowledgeGraph, doc: str, pred: str, rules: tuple[str, ...] = ()) -> list:
    """(subject names, object names) of one document's facts with this predicate."""
    return [
        (_names(kg, f.subject), _names(kg, f.object))
        for f in kg.facts
        if f.doc_id == doc and f.predicate == pred and (not rules or f.fact.rule.startswith(rules))
    ]


def _score_relations(kg: KnowledgeGraph, gold: dict, counts: _Counts) -> None:
    doc = gold["doc_id"]
    secretaries = [(g["person"], g["unit"]) for g in gold.get("secretaryOf", [])]
    _match_pairs(secretaries, _pairs(kg, doc, "secretaryOf"), counts, "secretaryOf", doc)
    # temporary branches: scored on the units that set one up
    units = {frozenset(o) for _, o in _pairs(kg, doc, "establishedBy")}
    branches = [("", g["unit"]) for g in gold.get("temporaryBranch", [])]
    _match_pairs(branches, [({""}, set(u)) for u in units], counts, "temporaryBranch", doc)
    part_of = [(g["child"], g["parent"]) for g in gold.get("partOf", [])]
    _match_pairs(part_of, _pairs(kg, doc, "partOf", ("partOf.",)), counts, "partOf", doc)
    adopts = _unique([(g["adopter"], g["programme"]) for g in gold.get("adopts", [])])
    _match_pairs(adopts, _unique_sets(_pairs(kg, doc, "adopts")), counts, "adopts", doc)
    stats = [
        ({_norm(_num(v["quantity"]))}, {v["unit"]})
        for iri, v in kg.statistics.items()
        if iri.rsplit("/", 1)[1].startswith(doc)
    ]
    gold_stats = [(_num(g["quantity"]), g["unit"]) for g in gold.get("statistics", [])]
    _match_pairs(gold_stats, stats, counts, "statistics", doc)


_ENTITY_CLASSES = {
    "Person", "Province", "City", "District", "County", "CountyLevelCity", "Street", "Town",
    "Township", "Community", "Village", "Road", "Compound", "PartyCommittee", "PartyBranch",
    "TemporaryPartyBranch", "PartyGroup", "GovernmentBody", "Enterprise", "SocialOrganisation",
    "Programme", "Event",
}  # fmt: skip


def _num(value) -> str:
    f = float(value)
    return str(int(f)) if f == int(f) else f"{f:g}"


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted({(_norm(a), _norm(b)) for a, b in pairs})


def _unique_sets(pairs: list[tuple[set[str], set[str]]]) -> list[tuple[set[str], set[str]]]:
    seen, out = set(), []
    for a, b in pairs:
        key = (frozenset(a), frozenset(b))
        if key not in seen:
            seen.add(key)
            out.append((a, b))
    return out


def _summarise(counts: _Counts) -> dict:
    out: dict = {"entities": {}, "relations": {}, "errors": {}}
    total = [0, 0, 0]
    for key, (tp, fp, fn) in sorted(counts.c.items()):
        kind, name = key.split(":", 1) if ":" in key else ("relation", key)
        if kind == "entity":
            out["entities"][name] = _prf(tp, fp, fn)
            total = [total[0] + tp, total[1] + fp, total[2] + fn]
        else:
            out["relations"][name] = _prf(tp, fp, fn)
        out["errors"][key] = counts.errors.get(key, [])
    out["entities_overall"] = _prf(*total)
    return out


def check_floors(result: dict, floors: dict) -> list[str]:
    """Figures below their floor, as readable lines (empty when all pass)."""
    failures = []
    overall = result["entities_overall"]["f1"]
    if overall < floors["entities_overall"]:
        failures.append(f"entities F1 {overall:.3f} < {floors['entities_overall']}")
    for cls, row in result["entities"].items():
        floor = floors.get("entity_classes", {}).get(cls, floors["entity_class_default"])
        if row["tp"] + row["fn"] and row["f1"] < floor:
            failures.append(f"entity {cls} F1 {row['f1']:.3f} < {floor}")
    for rel, floor in floors["relations"].items():
        row = result["relations"].get(rel)
        if row is not None and row["f1"] < floor:
            failures.append(f"{rel} F1 {row['f1']:.3f} < {floor}")
    return failures


def evaluate(gold_dir: Path, seeds_dir: Path) -> dict:
    from kg.pipeline import build_graph

    gold_files = sorted(p for p in gold_dir.glob("*.json") if p.name != "floors.json")
    if not gold_files:
        raise FileNotFoundError(f"{gold_dir}: no gold .json files")
    docs = [json.loads(p.read_text(encoding="utf-8"))["doc_id"] for p in gold_files]
    paths = [seeds_dir / f"{d}.txt" for d in docs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"gold names articles that are not there: {', '.join(missing)}")
    _, kg, _ = build_graph(paths)
    result = score(kg, gold_files)
    floors = json.loads((gold_dir / "floors.json").read_text(encoding="utf-8"))
    result["floors"] = floors
    result["failures"] = check_floors(result, floors)
    result["passed"] = not result["failures"]
    return result


def format_report(result: dict, errors: bool = False) -> str:
    lines = [f"{'':24}{'P':>7}{'R':>7}{'F1':>7}{'tp':>5}{'fp':>5}{'fn':>5}"]

    def row(name: str, r: dict) -> str:
        return (f"{name:24}{r['precision']:7.3f}{r['recall']:7.3f}{r['f1']:7.3f}"
                f"{r['tp']:5d}{r['fp']:5d}{r['fn']:5d}")  # fmt: skip

    lines.append(row("entities (all)", result["entities_overall"]))
    lines += [row("  " + k, v) for k, v in result["entities"].items()]
    lines += [row(k, v) for k, v in result["relations"].items()]
    if errors:
        for key, errs in result["errors"].items():
            lines += [f"  [{key}] {e}" for e in errs]
    if result.get("failures"):
        lines.append("BELOW FLOOR: " + "; ".join(result["failures"]))
    elif "passed" in result:
        lines.append("all figures at or above their floors")
    return "\n".join(lines)
