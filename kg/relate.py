"""Relations between mentions: who leads what, who set up which temporary branch,
who adopts which programme, which place is part of which, and counted facts.

Each rule reads one sentence plus a little document context (the unit a section is
about, the article's city) and yields ``Fact``s with a rule id and a confidence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from kg.model import Document, Fact, Mention, Sentence
from kg.recognise import ADMIN_LEVEL, PLACE_CLASSES

RULES = Path(__file__).resolve().parent / "rules"
ORG_CLASSES = {
    "Organisation", "PartyOrganisation", "PartyCommittee", "PartyBranch",
    "TemporaryPartyBranch", "PartyGroup", "GovernmentBody", "Enterprise",
    "SocialOrganisation",
}  # fmt: skip
UNIT_CLASSES = {"Street", "Town", "Township", "District", "County", "CountyLevelCity",
                "Community", "Village", "City"}  # fmt: skip
LOCAL_UNITS = {"Street", "Town", "Township", "Community", "Village"}


@lru_cache(maxsize=1)
def load_relate_rules() -> dict:
    return yaml.safe_load((RULES / "relate.yaml").read_text(encoding="utf-8"))


@dataclass
class Context:
    """What the document is about so far: sentences without a subject inherit it."""

    topic: Mention | None = None  # the unit the current section is about
    city: Mention | None = None  # the article's city (for 我市 / 全市)
    event: Mention | None = None  # the meeting the article reports
    facts: list[Fact] = field(default_factory=list)


def _conf(table: dict, key: str) -> float:
    return float(table.get(key, table.get("default", 0.8)))


def _places(mentions: list[Mention]) -> list[Mention]:
    return [m for m in mentions if m.label in PLACE_CLASSES]


def _subject(sentence: Sentence, mentions: list[Mention], window: int) -> Mention | None:
    """The first unit or organisation near the start of the sentence."""
    for m in mentions:
        if m.start > window:
            break
        if m.label in UNIT_CLASSES or m.label in ORG_CLASSES:
            # prefer the most specific unit of an adjacent chain ("中原区莲湖街道")
            chain = [m]
            for n in mentions:
                if n.start == chain[-1].end and n.label in UNIT_CLASSES:
                    chain.append(n)
            return chain[-1]
    return None


def _owner_place(org: Mention, mentions: list[Mention]) -> Mention | None:
    """The place an organisation's name starts with or is owned by ("莲湖街道党工委")."""
    inside = [m for m in mentions if m.label in PLACE_CLASSES and org.start <= m.start
              and m.end <= org.end and m is not org]  # fmt: skip
    return inside[-1] if inside else None


# --------------------------------------------------------------------------- rules


def secretaries(sentence: Sentence, mentions: list[Mention], ctx: Context) -> list[Fact]:
    """ "城关乡党委书记 张三": a party organisation, a secretary title, then a name."""
    rules = load_relate_rules()["secretary"]
    out = []
    text = sentence.text
    for person in (m for m in mentions if m.label == "Person"):
        head = text[: person.start].rstrip(" ")
        title = next((t for t in rules["title_suffixes"] if head.endswith(t)), None)
        if title is None or any(head.endswith(t) for t in rules["excluded_titles"]):
            continue
        title_start = len(head) - len(title)
        org = next((m for m in mentions if m.label in ORG_CLASSES and m.end == title_start), None)
        if org is None:
            continue
        unit = _owner_place(org, mentions) or org
        organ = org.text[unit.end - org.start :] if unit is not org else ""
        if organ.startswith("委"):  # "中原区委": the organ is 区委
            organ = unit.text[-1] + organ
        role = organ + title
        conf = _conf(rules["confidence"], person.rule)
        out.append(Fact(person, "secretaryOf", unit, "secretary.title", conf, role=role))
        out.append(Fact(person, "holds", unit, "secretary.title", conf, role=role))
        if person.rule == "person.title_line" and ctx.event is not None:
            out.append(Fact(person, "spokeAt", ctx.event, "event.speaker", 0.8))
    return out


def part_of(sentence: Sentence, mentions: list[Mention]) -> list[Fact]:
    """Adjacent places from larger to smaller: "管城区紫荆山南路街道馨湾社区"."""
    out = []
    places = _places(mentions)
    by_start = {m.start: m for m in places}
    for m in places:
        nxt = by_start.get(m.end)
        if nxt is None:
            continue
        if ADMIN_LEVEL.get(m.label, 9) < ADMIN_LEVEL.get(nxt.label, 9):
            out.append(Fact(nxt, "partOf", m, "partOf.adjacent", 0.9))
    return out


def located_in(sentence: Sentence, mentions: list[Mention]) -> list[Fact]:
    out = []
    for org in (m for m in mentions if m.label in ORG_CLASSES):
        place = _owner_place(org, mentions)
        if place is not None:
            out.append(Fact(org, "locatedIn", place, "locatedIn.name", 0.9))
    return out


def established_by(sentence: Sentence, mentions: list[Mention], ctx: Context) -> list[Fact]:
    rules = load_relate_rules()["establish"]
    out = []
    text = sentence.text
    for branch in (m for m in mentions if m.label == "TemporaryPartyBranch"):
        unit = _owner_place(branch, mentions)
        if unit is None:
            before = [m for m in mentions if m.end <= branch.start and m.label in UNIT_CLASSES]
            local = [m for m in before if m.label in LOCAL_UNITS]
            unit = (local or before or [None])[-1]
        rule = "establish.subject"
        if unit is None and ctx.topic is not None:
            unit, rule = ctx.topic, "establish.topic"
        if unit is None:
            continue
        verb = any(v in text[: branch.start] for v in rules["verbs"])
        conf = _conf(rules["confidence"], "verb" if verb else "no_verb")
        out.append(Fact(branch, "establishedBy", unit, rule, conf))
    return out


def adopts(sentence: Sentence, mentions: list[Mention], ctx: Context) -> list[Fact]:
    rules = load_relate_rules()
    adopt = rules["adopt"]
    text = sentence.text
    out = []
    for prog in (m for m in mentions if m.label == "Programme"):
        before = text[: prog.start]
        # "馨湾社区的“老年日间照料”": a unit's own brand.
        owner = next((m for m in mentions if m.label in UNIT_CLASSES | ORG_CLASSES
                      and text[m.end : prog.start] in ("的“", "的「", "的")), None)  # fmt: skip
        if owner is not None:
            out.append(Fact(owner, "adopts", prog, "adopts.possessive", 0.85))
            continue
        framed = re.search(adopt["frame"][0] + r"[“「]?$", before) and re.match(
            r"[”」]?(?:工作)?" + adopt["frame"][1], text[prog.end :]
        )
        verb = framed or any(v in before for v in adopt["verbs"])
        if not verb:
            continue
        subject = _subject(sentence, [m for m in mentions if m.end <= prog.start],
                           rules["subject_window"])  # fmt: skip
        rule = "adopts.subject"
        head = before[: rules["subject_window"]]
        if subject is None and any(w in head for w in adopt["city_subjects"]):
            subject, rule = ctx.city, "adopts.city"
        if subject is None:
            subject, rule = ctx.topic, "adopts.topic"
        if subject is None:
            continue
        conf = _conf(adopt["confidence"], rule.split(".")[1])
        out.append(Fact(subject, "adopts", prog, rule, conf))
    return out


_NUM = r"(\d+(?:\.\d+)?)"


def statistics(sentence: Sentence, mentions: list[Mention], ctx: Context) -> list[Fact]:
    """Counted facts: "成立临时党组织1.2万个", "418支驻村工作队", "3380多名乡村党组织书记"."""
    rules = load_relate_rules()["statistics"]
    text = sentence.text
    units = "|".join(sorted(map(re.escape, rules["units"]), key=len, reverse=True))
    mults = "".join(rules["multipliers"])
    q_after = "|".join(rules["qualifiers_after"])
    q_before = "|".join(sorted(rules["qualifiers_before"], key=len, reverse=True))
    n = rules["max_measure_chars"]
    amount = (
        rf"(?P<before>{q_before})?(?P<num>\d+(?:\.\d+)?)\s*(?P<q1>{q_after})?"
        rf"(?P<mult>[{mults}](?![元]))?(?P<q2>{q_after})?(?P<unit>{units})"
    )
    verb_first = re.compile(
        rf"(?P<measure>[\u4e00-\u9fff、（）]{{2,{n}}}?){amount}(?![\u4e00-\u9fff])"
    )
    count_first = re.compile(rf"{amount}(?P<measure>[\u4e00-\u9fff（）]{{2,{n}}})")
    out = []
    seen: set[tuple[int, int]] = set()
    for pattern, leading in ((verb_first, True), (count_first, False)):
        for m in pattern.finditer(text):
            start, end = m.start("num"), m.end("unit")
            if any(s <= start < e for s, e in seen):
                continue
            seen.add((start, end))
            measure = _trim_measure(m.group("measure"), leading=leading)
            qual = m.group("before") or m.group("q1") or m.group("q2") or ""
            if "bound" in m.groupdict() and m.group("bound"):
                qual = (qual + m.group("bound")).strip()
            out.append(
                _stat(
                    sentence,
                    start,
                    end,
                    measure,
                    m.group("num"),
                    m.group("mult"),
                    qual,
                    m.group("unit"),
                    rules,
                    ctx,
                    mentions,
                )  # fmt: skip
            )
    return [f for f in out if f is not None]


def _trim_measure(measure: str, leading: bool = True) -> str:
    """The counted thing: the phrase before the number ("成立临时党组织1.2万个") or the noun
    phrase after the unit ("418支驻村工作队就地转化"), without the clause around it."""
    rules = load_relate_rules()["statistics"]
    if leading:
        measure = re.sub(r"^.*?(?:" + "|".join(rules["measure_lead_cut"]) + ")", "", measure)
        measure = re.sub(r"^(?:有|和|并|达到|达|为|是)", "", measure)
    else:
        measure = re.split("|".join(rules["measure_tail_cut"]), measure)[0]
    return _balanced(measure.strip("、"))


def _balanced(text: str) -> str:
    """Drop a bracket that lost its partner when the phrase was cut: "乡镇（街道）" stays."""
    while text.endswith("（") or (text.endswith("）") and text.count("（") < text.count("）")):
        text = text[:-1]
    while text.startswith("）") or (text.startswith("（") and text.count("（") > text.count("）")):
        text = text[1:]
    if text.count("（") > text.count("）"):
        text += "）"  # "村（社区" cut before its closing bracket
    return text


def _stat(sentence, start, end, measure, number, mult, qual, unit, rules, ctx, mentions):
    if not measure or len(measure) < 2 or measure in rules["not_measures"]:
        return None
    quantity = float(number) * rules["multipliers"].get(mult or "", 1)
    about = None
    before = [m for m in mentions if m.end <= start and m.label in UNIT_CLASSES]
    if before:
        about = before[-1]
    elif ctx.city is not None and re.search(r"全市|我市|市委", sentence.text[:start]):
        about = ctx.city
    elif ctx.topic is not None:
        about = ctx.topic
    anchor = Mention(sentence.doc_id, sentence.index, sentence.text[start:end], "Statistic",
                     start, end, "statistic.count")  # fmt: skip
    q = f"{quantity:.10g}" if quantity != int(quantity) else str(int(quantity))
    extra = (("quantity", q), ("unit", unit), ("qualifier", qual), ("measure", measure))
    target = about if about is not None else "unknown"
    return Fact(anchor, "about", target, "statistic.count", rules["confidence"], extra=extra)


# --------------------------------------------------------------------------- driver


def _update_context(sentence: Sentence, mentions: list[Mention], ctx: Context) -> None:
    window = load_relate_rules()["subject_window"]
    text = sentence.text
    # A heading byline "…党工委书记 张三" starts a section about that unit.
    people = [m for m in mentions if m.label == "Person" and m.rule == "person.title_line"]
    if people:
        units = [m for m in _places(mentions) if m.end <= people[0].start and
                 m.label in UNIT_CLASSES]  # fmt: skip
        local = [m for m in units if m.label in LOCAL_UNITS]
        if local or units:
            ctx.topic = (local or units)[-1]
            return
    subject = _subject(sentence, mentions, window)
    if subject is not None and subject.label in UNIT_CLASSES and not sentence.is_heading:
        if not text[: subject.start].rstrip("，, ").endswith(("在", "对", "向", "与", "和")):
            ctx.topic = subject


def _document_context(doc: Document, per_sentence: list[list[Mention]]) -> Context:
    ctx = Context()
    cities = Counter()
    first: dict[str, Mention] = {}
    for mentions in per_sentence:
        for m in mentions:
            if m.label == "City":
                key = m.canonical or m.text
                cities[key] += 1
                first.setdefault(key, m)
            if m.label == "Event" and ctx.event is None:
                ctx.event = m
    if cities:
        ctx.city = first[cities.most_common(1)[0][0]]
    return ctx


def relate(doc: Document, per_sentence: list[list[Mention]]) -> list[Fact]:
    """All facts of one document, sentence by sentence, in order."""
    ctx = _document_context(doc, per_sentence)
    facts: list[Fact] = []
    for sentence, mentions in zip(doc.sentences, per_sentence, strict=True):
        _update_context(sentence, mentions, ctx)
        facts += secretaries(sentence, mentions, ctx)
        facts += part_of(sentence, mentions)
        facts += located_in(sentence, mentions)
        facts += established_by(sentence, mentions, ctx)
        facts += adopts(sentence, mentions, ctx)
        facts += statistics(sentence, mentions, ctx)
    return facts
