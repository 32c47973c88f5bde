"""Recognise entity mentions in one sentence: gazetteer places, then rules.

Rules live in ``rules/recognise.yaml``; this module only knows how to apply the
kinds of rule (a suffix with a name before it, a title with a name after it, a
quoted programme name with its kind).  Token boundaries from the segmenter decide
where a name may start, so "全市社区" does not become a community.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from kg import lexicon
from kg.gazetteer import Gazetteer, load_gazetteer
from kg.model import Mention, Sentence

RULES = Path(__file__).resolve().parent / "rules"
DATA = Path(__file__).resolve().parent / "data"

PLACE_CLASSES = {
    "Province", "City", "District", "County", "CountyLevelCity", "Street", "Town",
    "Township", "Community", "Village", "Road", "Compound", "Place",
}  # fmt: skip
ADMIN_LEVEL = {  # lower number = larger unit; used for partOf by adjacency
    "Province": 0, "City": 1, "District": 2, "County": 2, "CountyLevelCity": 2,
    "Street": 3, "Town": 3, "Township": 3, "Community": 4, "Village": 4, "Road": 5,
    "Compound": 5,
}  # fmt: skip
OPEN_QUOTES = "“「『\"'‘"
CLOSE_QUOTES = "”」』\"'’"
_CJK = re.compile(r"[\u3400-\u9fff]")
_NAME_CHAR = re.compile(r"[\u3400-\u9fff0-9A-Za-z·]")


@dataclass(frozen=True)
class Rules:
    raw: dict
    gazetteer: Gazetteer
    surnames: frozenset[str]
    place_suffixes: tuple[tuple[str, str], ...]  # longest first
    place_suffixes_by_last: dict[str, tuple[tuple[str, str], ...]]  # by last character
    org_suffixes: tuple[tuple[str, str], ...]
    org_classes: dict[str, str]
    org_suffix_re: re.Pattern[str]
    title_re: re.Pattern[str]
    title_line_re: re.Pattern[str]
    place_stop: frozenset[str]
    generic_places: frozenset[str]
    generic_org_heads: frozenset[str]
    org_stop: frozenset[str]


@lru_cache(maxsize=1)
def load_rules() -> Rules:
    raw = yaml.safe_load((RULES / "recognise.yaml").read_text(encoding="utf-8"))
    surnames = set()
    for line in (DATA / "surnames.txt").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            surnames.update(line.split())
    gaz = load_gazetteer()

    def by_length(d: dict) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(d.items(), key=lambda kv: -len(kv[0])))

    return Rules(
        raw=raw,
        gazetteer=gaz,
        surnames=frozenset(surnames),
        place_suffixes=by_length(raw["place_suffixes"]),
        place_suffixes_by_last={
            c: tuple(x for x in by_length(raw["place_suffixes"]) if x[0][-1] == c)
            for c in {k[-1] for k in raw["place_suffixes"]}
        },
        org_suffixes=by_length(raw["organisation_suffixes"]),
        org_classes=dict(raw["organisation_suffixes"]),
        org_suffix_re=_lookahead(raw["organisation_suffixes"]),
        title_re=_lookahead(raw["person_titles_before"] + raw["person_titles_after"]),
        title_line_re=re.compile(
            "(?:"
            + "|".join(map(re.escape, sorted(raw["person_titles_before"], key=len)[::-1]))
            + r") +([\u4e00-\u9fff]{2,4})$"
        ),
        place_stop=frozenset(raw["place_stop_tokens"]),
        generic_places=frozenset(raw["generic_place_names"]),
        generic_org_heads=frozenset(raw["generic_organisation_heads"]),
        org_stop=frozenset(raw["organisation_stop_tokens"]),
    )


def _lookahead(words) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(f"(?=({alternatives}))")


def user_words(rules: Rules | None = None) -> list[str]:
    """Words the segmenter must keep whole: every gazetteer form and short form."""
    rules = rules or load_rules()
    words = set(rules.gazetteer.forms) | set(rules.gazetteer.short_forms)
    return sorted(w for w in words if len(w) >= 2)


# --------------------------------------------------------------------------- helpers


class _Span:
    """A candidate before it becomes a Mention (mutable while rules refine it)."""

    __slots__ = ("start", "end", "label", "rule", "code", "canonical", "prio")

    def __init__(self, start, end, label, rule, code=None, canonical=None, prio=0):
        self.start, self.end, self.label, self.rule = start, end, label, rule
        self.code, self.canonical, self.prio = code, canonical, prio


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the inside of each “…” pair."""
    out, stack = [], []
    for i, ch in enumerate(text):
        if ch in "“「『‘":
            stack.append(i)
        elif ch in "”」』’" and stack:
            out.append((stack.pop() + 1, i))
    return out


def _inside_quotes(quotes: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(qs <= start and end <= qe for qs, qe in quotes)


# --------------------------------------------------------------------------- places


def _ruler_places(matches: list[tuple[int, int, str, str]], rules: Rules) -> list[_Span]:
    """Gazetteer matches from the spaCy span ruler: (start, end, class, codes)."""
    out = []
    for start, end, cls, codes in matches:
        name = rules.gazetteer.divisions[codes.split("|")[0]].name
        out.append(_Span(start, end, cls, "gazetteer", codes, name, prio=3))
    return out


def _short_form_places(text: str, rules: Rules, taken: list[_Span]) -> list[_Span]:
    """Bare street/town stems right before an organ: "郑港党工委", "明湖办事处"."""
    gaz = rules.gazetteer
    organs = ("党工委", "党委", "办事处", "工委")
    out = []
    for organ in organs:
        for m in re.finditer(organ, text):
            p = m.start()
            for k in range(min(6, p), 1, -1):
                stem = text[p - k : p]
                if stem in gaz.short_forms and not _overlaps(taken, p - k, p):
                    divs = gaz.lookup_short(stem)
                    codes = "|".join(d.code for d in divs)
                    out.append(_Span(p - k, p, divs[0].cls, "gazetteer.short", codes,
                                     divs[0].name, prio=3))  # fmt: skip
                    break
    return out


def _stem_places(
    text: str, tokens: list[tuple[int, int]], rules: Rules, taken: list[_Span],
    quotes: list[tuple[int, int]],
) -> list[_Span]:  # fmt: skip
    """A unit's bare name as a whole word: "如今的郑州", "美丽登封"."""
    out = []
    for ts, te in tokens:
        divs = rules.gazetteer.lookup_stem(text[ts:te])
        if not divs or _overlaps(taken, ts, te) or _inside_quotes(quotes, ts, te):
            continue
        codes = "|".join(d.code for d in divs)
        out.append(_Span(ts, te, divs[0].cls, "gazetteer.stem", codes, divs[0].name, prio=0))
    return out


def _local_stems(
    text: str, tokens: list[tuple[int, int]], rules: Rules, taken: list[_Span],
    quotes: list[tuple[int, int]], document_codes: frozenset[str],
) -> list[_Span]:  # fmt: skip
    """A community or village named bare ("现在的申河") in an article about its township."""
    gaz = rules.gazetteer
    out = []
    for ts, te in tokens:
        word = text[ts:te]
        codes = [c for c in gaz.local_stems.get(word, []) if gaz.divisions[c].parent in
                 document_codes]  # fmt: skip
        if len(codes) != 1 or _overlaps(taken, ts, te) or _inside_quotes(quotes, ts, te):
            continue
        if te < len(text) and _CJK.match(text[te]) and text[te] not in "的":
            continue  # part of a longer noun ("滨湖公园", "新城区"), not the place itself
        t = lexicon.tag(word)
        if t is not None and t not in SINGLE_NAME_TAGS:
            continue  # an ordinary word that happens to name a village
        div = gaz.divisions[codes[0]]
        out.append(_Span(ts, te, div.cls, "gazetteer.local_stem", codes[0], div.name, prio=0))
    return out


def _enumerations(text: str, rules: Rules, taken: list[_Span]) -> list[_Span]:
    """Items of a list closed by a kind: "北京、成都等地", "世茂、恒大等知名房地产企业"."""
    out = []
    for kind in rules.raw["enumerations"]:
        pattern = re.compile(
            r"((?:[^、，。；：“”（）]{2,10}、)+[^、，。；：“”（）]{2,10})等" + kind["after"]
        )
        for m in pattern.finditer(text):
            pos = m.start(1)
            items = m.group(1).split("、")
            items[0] = re.sub(kind.get("lead", "^$"), "", items[0])
            pos = m.end(1) - len("、".join(items))
            for item in items:
                start, end = pos, pos + len(item)
                pos = end + 1
                if not (2 <= len(item) <= 10) or _overlaps(taken, start, end):
                    continue
                t = lexicon.tag(item)
                if kind.get("tags") and t not in kind["tags"]:
                    continue
                if t in ("v", "vn", "a", "ad", "d", "n") and not kind.get("tags"):
                    continue
                out.append(_Span(start, end, kind["class"], f"enumeration.{kind['class']}", prio=1))
    return out


def _overlaps(spans: list[_Span], start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in spans)


def _suffix_places(
    text: str, tokens: list[tuple[int, int]], rules: Rules, taken: list[_Span],
    quotes: list[tuple[int, int]],
) -> list[_Span]:  # fmt: skip
    """Name + place suffix ("馨湾社区", "海淀区"), the name bounded by token boundaries."""
    raw = rules.raw
    blocked = raw.get("suffix_not_followed_by", {})
    min_chars = raw.get("min_name_chars", 2)
    out = []
    non_place = tuple(raw.get("non_place_suffixes", ()))
    token_starts = {s for s, _ in tokens}
    ends = [(ts, te) for ts, te in tokens]
    # "江岸/区委": the segmenter glues a unit's suffix to 委; the unit ends inside the token.
    ends += [(ts, ts + 1) for ts, te in tokens if text[ts + 1 : te] == "委" and ts > 0]
    for ts, te in ends:
        token = text[ts:te]
        if text[max(0, te - 6) : te].endswith(non_place):
            continue
        for suffix, cls in rules.place_suffixes_by_last.get(text[te - 1], ()):
            if not text.endswith(suffix, 0, te):
                continue
            end_pos, p = te, te - len(suffix)
            if p < ts and p not in token_starts:
                continue  # the suffix would start inside an earlier token
            if end_pos < len(text) and text[end_pos] in blocked.get(suffix, ""):
                break
            if cls in ("Road", "Compound") and _inside_quotes(quotes, p, end_pos):
                break
            if any(s.start < end_pos and p < s.end for s in taken):
                break
            max_chars = raw["max_name_chars"].get(cls, raw["max_name_chars"]["default"])
            if p > ts:  # the suffix is glued to its name in one token: "鲁庄镇"
                if not _proper_token(token, rules, suffix):
                    break
                q = ts
            else:
                q = _name_start(text, p, max_chars, tokens, rules, taken, cls)
            if q is None or p - q < min_chars:
                break
            name = text[q:p]
            if text[q:end_pos] in rules.generic_places or name in rules.generic_places:
                break
            if _generic_descriptor(text, q, p, tokens) or not _single_name_ok(text, q, p, tokens):
                break
            if any(qs == q and qe == end_pos for qs, qe in quotes):
                break  # a quoted term ("“空壳村”") names a concept, not a place
            if cls == "City" and (text.startswith(("镇", "乡", "街道", "办事处"), end_pos)):
                cls = "CountyLevelCity"
            out.append(_Span(q, end_pos, cls, f"place.suffix.{suffix}", prio=1))
            break
    return out


def _proper_token(token: str, rules: Rules, suffix: str = "") -> bool:
    """A whole token like "鲁庄镇" may be a place unless the lexicon knows it as a common word."""
    t = lexicon.tag(token)
    if t is not None and (t not in lexicon.PROPER_TAGS or token in rules.generic_places):
        return False
    stem = token[: -len(suffix)] if suffix else token
    st = lexicon.tag(stem)  # "涣散村": 涣散 is an adjective, not a name
    return st is None or st in lexicon.NAME_TAGS


def _generic_descriptor(text: str, q: int, p: int, tokens: list[tuple[int, int]]) -> bool:
    """One descriptive word before the suffix ("智慧社区", "闲置学校") is a description."""
    name = text[q:p]
    if (q, p) not in set(tokens):
        return False
    t = lexicon.tag(name)
    return t in ("v", "vn", "a", "ad", "an", "d") or (t == "n" and lexicon.freq(name) > 200)


SINGLE_NAME_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nz", "nt"})


def _single_name_ok(text: str, q: int, p: int, tokens: list[tuple[int, int]]) -> bool:
    """A one-word name before a suffix must be a proper name or a rare word ("深化街道" is not)."""
    if (q, p) not in set(tokens):
        return True
    word = text[q:p]
    t = lexicon.tag(word)
    return t is None or t in SINGLE_NAME_TAGS or lexicon.freq(word) < 500


def _name_start(
    text: str, p: int, max_chars: int, tokens: list[tuple[int, int]], rules: Rules,
    taken: list[_Span], cls: str,
) -> int | None:  # fmt: skip
    """Leftmost start q < p such that text[q:p] is made of name-like tokens."""
    limit = max(0, p - max_chars)
    for s in taken:
        if s.end <= p:
            limit = max(limit, s.end)
    before = [(s, e) for s, e in tokens if e <= p and s >= limit]
    best = None
    count = 0
    for s, e in reversed(before):
        if e != (best if best is not None else p):
            break
        piece = text[s:e]
        if not _name_like(piece, rules, cls):
            break
        if _ends_with_admin_suffix(piece) and best is not None:
            break  # a unit of its own ("海淀区" before "学院路街道")
        best = s
        count += 1
        if count >= 3:
            break
    return best


def _name_like(piece: str, rules: Rules, cls: str) -> bool:
    if piece in rules.place_stop:
        return False
    if not all(_NAME_CHAR.match(c) for c in piece):
        return False
    if piece.isdigit():
        return cls in ("Compound", "Road")
    if not _CJK.search(piece):
        return False
    t = lexicon.tag(piece)
    return t is None or t in lexicon.NAME_TAGS


def _ends_with_admin_suffix(token: str) -> bool:
    return len(token) > 1 and token.endswith(("省", "市", "区", "县", "街道", "镇", "乡"))


def _choose(spans: list[_Span]) -> list[_Span]:
    """Non-overlapping: longer first, then higher priority, then leftmost."""
    chosen: list[_Span] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), -s.prio, s.start)):
        if not _overlaps(chosen, s.start, s.end):
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


# --------------------------------------------------------------------------- organisations


def _organisations(
    text: str, tokens: list[tuple[int, int]], rules: Rules, places: list[_Span],
    quotes: list[tuple[int, int]],
) -> list[_Span]:  # fmt: skip
    """Owner name + organisation suffix: "莲湖街道党工委", "郑州城建聚剧院管理有限公司"."""
    raw = rules.raw
    out: list[_Span] = []
    for end_pos, suffix in _suffixes_by_end(text, rules.org_suffix_re):
        cls = rules.org_classes[suffix]
        p = end_pos - len(suffix)
        follow = raw.get("org_not_followed_by", {}).get(suffix, "")
        if end_pos < len(text) and text[end_pos] in follow:
            continue
        q = _org_name_start(text, p, cls, tokens, rules, places, quotes, out)
        if q is not None:
            out.append(_Span(q, end_pos, cls, f"org.suffix.{suffix}", prio=2))
    out += _place_committees(text, places, rules)
    # "城乡社区发展治理委员会（社工委）": the short name in brackets is the same kind of body.
    for o in list(out):
        m = re.match(r"（([\u4e00-\u9fff]{2,5})）", text[o.end : o.end + 8])
        if m and o.label != "TemporaryPartyBranch":
            out.append(_Span(o.end + 1, o.end + 1 + len(m.group(1)), o.label, "org.abbreviation"))
    # "郑州地铁集团" is only the start of "郑州地铁集团有限公司".
    legal = tuple(raw.get("legal_form_suffixes", ()))
    out = [
        o
        for o in out
        if not any(
            t.start == o.start and t.end > o.end and text[o.end : t.end] in legal for t in out
        )
    ]
    # one span per (start, end)
    unique = {(o.start, o.end): o for o in out}
    return sorted(unique.values(), key=lambda o: (o.start, o.end))


def _lexicon_organisations(
    text: str, tokens: list[tuple[int, int]], rules: Rules, taken: list[_Span]
) -> list[_Span]:
    """Whole words the lexicon knows as organisations ("中央党校", "人民网")."""
    out = []
    classes = rules.raw["lexicon_organisation_classes"]
    for ts, te in tokens:
        word = text[ts:te]
        if lexicon.tag(word) != "nt" or len(word) < 3 or _overlaps(taken, ts, te):
            continue
        if word in rules.raw["organisation_suffixes"] or word in rules.generic_org_heads:
            continue  # "党工委" alone is the kind of body, not a body
        cls = next((c for suffix, c in classes.items() if word.endswith(suffix)), None)
        if cls is not None:
            out.append(_Span(ts, te, cls, "org.lexicon", prio=1))
    return out


def _suffixes_by_end(text: str, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
    """(end, suffix) for the longest suffix ending at each position, left to right."""
    best: dict[int, str] = {}
    for m in pattern.finditer(text):  # a lookahead: every start position, longest first
        suffix = m.group(1)
        end = m.start() + len(suffix)
        if len(suffix) > len(best.get(end, "")):
            best[end] = suffix
    return sorted(best.items())


def _place_committees(text: str, places: list[_Span], rules: Rules) -> list[_Span]:
    """ "中原区委", "郑州市委", "中共中原区委": a unit's name, then 委."""
    out = []
    for place in places:
        organ = rules.raw["place_party_committee"].get(text[place.end - 1 : place.end])
        if organ is None or not text.startswith("委", place.end):
            continue
        if text.startswith(("委员", "委会"), place.end):
            continue
        start = place.start - 2 if text.startswith("中共", place.start - 2) else place.start
        out.append(_Span(start, place.end + 1, "PartyCommittee", "org.place_committee", prio=2))
    return out


# Parts of speech an organisation's name may be built from, beyond names: numbers
# ("第七"), times ("今日"), verbal nouns ("管理"), and for purpose-named temporary
# branches verbs too ("片区改造临时党支部").
ORG_NAME_TAGS = lexicon.NAME_TAGS | {"m", "t", "vn", "nz", "l", "v"}


def _org_name_start(
    text: str, p: int, cls: str, tokens: list[tuple[int, int]], rules: Rules,
    places: list[_Span], quotes: list[tuple[int, int]], orgs: list[_Span],
) -> int | None:  # fmt: skip
    """Where the owner's name before an organisation suffix starts, or None if generic."""
    max_chars = rules.raw["max_organisation_chars"]
    # A quoted name right before the suffix: “四个中心”联合党委.
    if p > 0 and text[p - 1] in CLOSE_QUOTES:
        for qs, qe in quotes:
            if qe == p - 1:
                return qs - 1
    # A unit right before a party organ owns it: "郑庵镇党委".
    place = next((s for s in places if s.end == p), None)
    if place is not None and cls.startswith(("Party", "TemporaryParty")):
        return place.start
    allowed = ORG_NAME_TAGS | ({"v"} if cls == "TemporaryPartyBranch" else set())
    q = p
    token_start = {e: s for s, e in tokens}
    while q > 0 and p - q < max_chars:
        nested = next((s for s in places + orgs if s.end == q), None)
        if nested is not None:
            q = nested.start
            if nested in places:
                break  # a place starts the name: "中原区非公经济组织党建工作委员会"
            continue
        prev = token_start.get(q)
        if prev is None:
            break
        piece = text[prev:q]
        if piece in STOP_VERBS or piece in rules.org_stop:
            break
        if piece in rules.generic_org_heads and q == p and cls != "TemporaryPartyBranch":
            return None  # "街道党工委", "社区党组织": whose, is not said
        if not all(_NAME_CHAR.match(c) for c in piece):
            break
        t = lexicon.tag(piece)
        if t is not None and t not in allowed and not piece.isdigit():
            break
        q = prev
    if q == p:
        return p if cls == "TemporaryPartyBranch" else None
    name = text[q:p]
    if cls == "TemporaryPartyBranch":
        return q  # named by purpose ("项目临时党支部", "产业临时党支部")
    if name in rules.generic_org_heads or len(name) < 2:
        return None
    if _generic_descriptor(text, q, p, tokens):
        return None  # "专业公司", "领域党支部"
    return q


# Verbs that start a clause before a name ("成立…临时党支部"): never part of the name.
STOP_VERBS = frozenset(
    {
        "成立",
        "组建",
        "建立",
        "设立",
        "建起",
        "整合",
        "吸纳",
        "涵盖",
        "依托",
        "推动",
        "带动",
        "引导",
        "指导",
        "打造",
        "在",
        "由",
        "把",
        "将",
        "和",
        "与",
    }
)


# --------------------------------------------------------------------------- people


def _people(text: str, tokens: list[tuple[int, int]], rules: Rules) -> list[_Span]:
    raw = rules.raw
    out = []
    before = set(raw["person_titles_before"])
    # "总书记" is not "书记": only the longest title ending at a position counts.
    for end_pos, title in _suffixes_by_end(text, rules.title_re):
        if title not in before:
            continue
        i = end_pos
        while i < len(text) and text[i] == " ":
            i += 1
        end = _name_end(text, i, tokens, rules)
        if end is not None:
            out.append(_Span(i, end, "Person", f"person.title.{title}", prio=2))
    for title in raw["person_titles_after"]:
        for m in re.finditer(re.escape(title), text):
            for k in (3, 2, 4):
                i = m.start() - k
                tag = lexicon.tag(text[i : m.start()]) if i >= 0 else None
                if (
                    i >= 0
                    and (i, m.start()) in set(tokens)
                    and (
                        (tag or "").startswith("nr")
                        or _name_end(text, i, tokens, rules) == m.start()
                    )
                ):
                    out.append(_Span(i, m.start(), "Person", f"person.title_after.{title}"))
                    break
    # Full names the lexicon knows as such (public figures).
    for ts, te in tokens:
        if lexicon.tag(text[ts:te]) == "nrfg" and _is_surname_at(text, ts, rules) and te - ts >= 2:
            out.append(_Span(ts, te, "Person", "person.lexicon", prio=1))
    # A heading or byline "…党委书记 张三": a title, a space, a name ending the line.
    for m in rules.title_line_re.finditer(text):
        if _is_surname_at(text, m.start(1), rules):
            out.append(_Span(m.start(1), m.end(1), "Person", "person.title_line", prio=3))
    # A quoted nickname right before a name: “警界花木兰”王五.
    for m in re.finditer(r"[”」](?=[\u4e00-\u9fff])", text):
        end = _name_end(text, m.end(), tokens, rules)
        if end is None or lexicon.tag(text[m.end() : end]) is not None:
            continue
        given = text[m.end() + 1 : end]
        if lexicon.tag(given) is not None and not lexicon.tag(given).startswith("nr"):
            continue
        out.append(_Span(m.end(), end, "Person", "person.after_quote", prio=1))
    return out


def _name_end(text: str, i: int, tokens: list[tuple[int, int]], rules: Rules) -> int | None:
    """End of a personal name starting at ``i`` (a surname, then one or two characters)."""
    lo, hi = rules.raw["person_name_chars"]
    if i >= len(text) or not _is_surname_at(text, i, rules):
        return None
    token_end = {s: e for s, e in tokens}
    end = token_end.get(i)
    if end is None:
        return None
    name = text[i:end]
    if lo <= len(name) <= hi:
        t = lexicon.tag(name)
        if t is not None and not t.startswith("nr"):
            return None
    elif len(name) <= 2:
        # The segmenter split an unknown name ("李 华"): glue short tokens after the surname.
        while end in token_end and end - i < 3:
            nxt = text[end : token_end[end]]
            t = lexicon.tag(nxt)
            if len(nxt) > 2 or not _CJK.match(nxt) or (t is not None and t not in NAME_TAGS_GIVEN):
                break
            end = token_end[end]
        name = text[i:end]
        if not lo <= len(name) <= hi:
            return None
    else:
        return None
    if name in rules.raw["not_person_names"] or not all(_CJK.match(c) for c in name):
        return None
    if name.endswith(
        ("长", "员", "者", "记", "们", "民", "书", "区", "市", "县", "镇", "乡", "村", "路")
    ):
        return None
    return end


# Tags a given name's characters may carry in the lexicon (many are ordinary words).
NAME_TAGS_GIVEN = frozenset({"nr", "nrt", "nrfg", "ns", "nz", "n", "a", "ng", "ag", "tg", "j"})


def _is_surname_at(text: str, i: int, rules: Rules) -> bool:
    return text[i : i + 2] in rules.surnames or text[i] in rules.surnames


def byline_people(text: str, rules: Rules) -> list[_Span]:
    """Names in a byline line: "本报记者 孙志刚 通讯员 蔚光勋 文图"."""
    out = []
    markers = "|".join(sorted(map(re.escape, rules.raw["byline_markers"]), key=len, reverse=True))
    for m in re.finditer(rf"(?:{markers})\s*((?:[\u4e00-\u9fff]{{2,4}}\s*)+)", text):
        pos = m.start(1)
        for name in m.group(1).split():
            start = text.index(name, pos)
            pos = start + len(name)
            if name in ("文图", "摄影", "报道", "文", "图") or not _is_surname_at(
                text, start, rules
            ):
                continue
            out.append(_Span(start, start + len(name), "Person", "person.byline", prio=3))
    return out


# --------------------------------------------------------------------------- programmes, events


def _programmes(
    text: str, quotes: list[tuple[int, int]], rules: Rules, known: frozenset[str] = frozenset()
) -> list[_Span]:
    """Quoted programme names, told apart from slogans by their kind, verb or form."""
    raw = rules.raw
    lo, hi = raw["programme_chars"]
    kinds = sorted(raw["programme_kinds"], key=len, reverse=True)
    out = []
    for qs, qe in quotes:
        name = text[qs:qe]
        if not (lo <= len(name) <= hi) or not _CJK.search(name) and not re.search(r"\d", name):
            continue
        if any(c in name for c in "，。！？；：“”"):
            continue
        if norm_name(name) in known:
            out.append(_Span(qs, qe, "Programme", "programme.known", prio=2))
            continue
        direct = text[qe + 1 : qe + 9]
        after = _after_chain(text, qe + 1, kinds)
        if after.startswith(tuple(raw["not_programme_kinds"])):
            continue
        clause = text[_clause_start(text, qs) : qs - 1]
        before = re.sub(r"(?:了个|了|个)$", "", text[max(0, qs - 1 - 8) : qs - 1])
        verb = next((v for v in raw["programme_verbs"] if before.endswith(v)), None)
        if after.startswith(tuple(raw["strategy_kinds"])) and verb is None:
            continue
        kind = next((k for k in kinds if after.startswith(k)), None)
        numbered = re.match(r"[0-9一二三四五六七八九十两个]{1,4}", after)
        if kind is None and numbered:  # "“…”三个一工作法": a numbered kind
            kind = next((k for k in kinds if after.startswith(k, numbered.end())), None)
        ends_clause = not direct or not _CJK.match(direct[0])
        if verb is None and _numbered(name) and (kind or ends_clause):
            verb = next((v for v in raw["programme_verbs"] if len(v) > 1 and v in clause), None)
        inner = any(name.endswith(k) for k in raw["programme_inner_kinds"])
        lead = any(before.endswith(w) for w in raw["slogan_lead_words"])
        if lead and not kind:
            continue
        end = qe
        if not kind and not inner:
            # "“一把手”走流程制度": the name runs on after the quote up to its kind.
            runon = "|".join(map(re.escape, raw["programme_runon_kinds"]))
            m = re.match(r"([\u4e00-\u9fff]{2,4}?)(" + runon + ")", direct)
            if m and not re.search(r"[的等式为之]", m.group(1)) and not _numbered(m.group(1)):
                kind, end = m.group(2), qe + 1 + len(m.group(1))
        if kind or inner or (verb and ends_clause and _looks_like_name(name)):
            rule = "programme.kind" if kind else "programme.inner" if inner else "programme.verb"
            start = qs - 1 if end > qe else qs  # keep the quotes of a run-on name
            out.append(_Span(start, end, "Programme", rule, prio=2))
    for pattern in raw["programme_bare_patterns"]:
        for m in re.finditer(pattern, text):
            if not _inside_quotes(quotes, m.start(), m.end()):
                out.append(_Span(m.start(), m.end(), "Programme", "programme.bare", prio=1))
    return out


def _after_chain(text: str, i: int, kinds: list[str]) -> str:
    """What follows a quote once sibling quotes, "等" and "的" are skipped:
    "“六稳”“六保”工作", "“我为群众办实事”“我就是营商环境”等活动", "“1街2路3园6区”的工作思路",
    "社区的“老年日间照料”、…公司的“瑞丽工作室”等一个个特色品牌"."""
    while True:
        m = re.match(r"[、]?(?:[^，。；！？“”「」]{0,16}?的)?[“「][^“”「」]{1,20}[”」]", text[i:])
        if m is None or (m.group(0)[0] != "、" and not m.group(0).startswith(("“", "「"))):
            break
        i += m.end()
    m = re.match(r"等|的", text[i:])
    if m:
        i += m.end()
        if m.group(0) == "等":  # "等一个个特色品牌": a few words before the kind
            for k in range(0, 6):
                if text.startswith(tuple(kinds), i + k):
                    i += k
                    break
    return text[i : i + 8]


def _clause_start(text: str, i: int) -> int:
    return max([0] + [k + 1 for k in range(i) if text[k] in "，。；！？：,;"])


def norm_name(name: str) -> str:
    return re.sub(r"[\s、，,·“”\"']", "", name)


def _numbered(name: str) -> bool:
    return bool(re.search(r"[0-9一二三四五六七八九十两千百]", name))


def _looks_like_name(name: str) -> bool:
    """Short, or numbered ("四个一", "1+N"), rather than a sentence-like slogan."""
    return len(name) <= 8 or bool(re.search(r"[0-9一二三四五六七八九十两]", name))


def _events(
    text: str, rules: Rules, places: list[_Span], quotes: list[tuple[int, int]]
) -> list[_Span]:
    """Named meetings: from a year, a level or a unit up to the kind of meeting."""
    raw = rules.raw
    suffixes = "|".join(sorted(map(re.escape, raw["event_suffixes"]), key=len, reverse=True))
    anchor = re.compile(raw["event_anchor"])
    out = []
    for m in re.finditer(suffixes, text):
        if text.startswith(tuple(raw["event_not_followed_by"]), m.end()):
            continue  # "联席会议机制" is a mechanism, "会员" a member
        lo = max(0, m.end() - raw["max_event_chars"])
        clause = max([lo] + [i + 1 for i in range(lo, m.start()) if text[i] in "，。；！？：,;"])
        for verb in raw["event_cut_after"]:
            k = text.rfind(verb, clause, m.start())
            if k >= 0:
                clause = k + len(verb)
        starts = [a.start() + clause for a in anchor.finditer(text[clause : m.start()])]
        starts += [p.start for p in places if clause <= p.start < m.start()]
        quoted = next((qs for qs, qe in quotes if qe == m.end() and qs >= clause), None)
        if starts:
            out.append(_Span(min(starts), m.end(), "Event", "event.suffix", prio=2))
        elif quoted is not None:
            out.append(_Span(quoted, m.end(), "Event", "event.quoted", prio=2))
    return out


# --------------------------------------------------------------------------- entry point


def recognise(
    sentence: Sentence,
    tokens: list[tuple[int, int]],
    rules: Rules | None = None,
    *,
    known_programmes: frozenset[str] = frozenset(),
    document_codes: frozenset[str] | None = None,
    gazetteer: list[tuple[int, int, str, str]] | None = None,
) -> list[Mention]:
    """All mentions in one sentence; places never overlap each other.

    ``known_programmes`` are programme names found elsewhere in the corpus (a quoted
    name is a programme everywhere once it is one somewhere); ``document_codes`` are
    the divisions the document names in full, which a bare "莲湖" may then abbreviate.
    ``gazetteer`` holds the span ruler's matches (kg/components.py).
    """
    rules = rules or load_rules()
    text = sentence.text
    quotes = _quoted_spans(text)

    gaz = _ruler_places(gazetteer or [], rules)
    gaz += _short_form_places(text, rules, gaz)
    places = _choose(gaz)
    places = _choose(places + _suffix_places(text, tokens, rules, places, quotes))
    stems = _stem_places(text, tokens, rules, places, quotes)
    if document_codes is not None:
        stems = [p for p in stems if set(p.code.split("|")) & document_codes]
        stems += _local_stems(text, tokens, rules, places + stems, quotes, document_codes)
    places = _choose(places + stems)
    places = _choose(places + [e for e in _enumerations(text, rules, places) if e.label in
                               PLACE_CLASSES])  # fmt: skip
    orgs = _organisations(text, tokens, rules, places, quotes)
    orgs += [e for e in _enumerations(text, rules, places + orgs) if e.label not in PLACE_CLASSES]
    people = _choose(_people(text, tokens, rules) + byline_people(text, rules))
    programmes = _choose(_programmes(text, quotes, rules, known_programmes))
    events = _choose(_events(text, rules, places, quotes))

    # "成立临时党组织1.2万个": a count of branches, not one branch.
    orgs = [o for o in orgs if not (o.label == "TemporaryPartyBranch" and
                                    re.match(r"\s*\d", text[o.end : o.end + 2]))]  # fmt: skip
    programmes = [
        p for p in programmes if not any(e.start <= p.start and p.end <= e.end for e in events)
    ]  # "“黄河文化节”" is a meeting
    orgs += _lexicon_organisations(text, tokens, rules, places + orgs + people)
    # People and programmes win over places they overlap (a name is not a road).
    blockers = people + programmes
    places = [p for p in places if not _overlaps(blockers, p.start, p.end)]
    orgs = [o for o in orgs if not _overlaps(people, o.start, o.end)]
    spans = places + orgs + people + programmes + events
    spans.sort(key=lambda s: (s.start, -s.end, s.label))
    return [
        Mention(
            doc_id=sentence.doc_id,
            sentence=sentence.index,
            text=text[s.start : s.end],
            label=s.label,
            start=s.start,
            end=s.end,
            rule=s.rule,
            code=s.code,
            canonical=s.canonical,
        )
        for s in spans
    ]
