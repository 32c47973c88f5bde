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
    org_suffixes: tuple[tuple[str, str], ...]
    place_stop: frozenset[str]
    generic_places: frozenset[str]
    generic_org_heads: frozenset[str]
    max_form_len: int


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
        org_suffixes=by_length(raw["organisation_suffixes"]),
        place_stop=frozenset(raw["place_stop_tokens"]),
        generic_places=frozenset(raw["generic_place_names"]),
        generic_org_heads=frozenset(raw["generic_organisation_heads"]),
        max_form_len=max(len(f) for f in gaz.forms),
    )


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


def _gazetteer_places(text: str, starts: set[int], rules: Rules) -> list[_Span]:
    gaz = rules.gazetteer
    out = []
    i, n = 0, len(text)
    while i < n:
        found = None
        for j in range(min(n, i + rules.max_form_len), i + 1, -1):
            form = text[i:j]
            if form in gaz.forms:
                found = (j, form)
                break
        if found is None:
            i += 1
            continue
        j, form = found
        divs = gaz.lookup(form)
        cls = divs[0].cls
        # Village-level names are short and common: only at a word start.
        if cls in ("Community", "Village") and i not in starts:
            i += 1
            continue
        codes = "|".join(d.code for d in divs)
        out.append(_Span(i, j, cls, "gazetteer", codes, divs[0].name, prio=3))
        i = j
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
    for ts, te in tokens:
        token = text[ts:te]
        for suffix, cls in rules.place_suffixes:
            if not token.endswith(suffix):
                continue
            end_pos, p = te, te - len(suffix)
            if end_pos < len(text) and text[end_pos] in blocked.get(suffix, ""):
                break
            if cls in ("Road", "Compound") and _inside_quotes(quotes, p, end_pos):
                break
            if any(s.start < end_pos and p < s.end for s in taken):
                break
            max_chars = raw["max_name_chars"].get(cls, raw["max_name_chars"]["default"])
            if p > ts:  # the suffix is glued to its name in one token: "鲁庄镇"
                if not _proper_token(token, rules):
                    break
                q = ts
            else:
                q = _name_start(text, p, max_chars, tokens, rules, taken, cls)
            if q is None or p - q < min_chars:
                break
            name = text[q:p]
            if text[q:end_pos] in rules.generic_places or name in rules.generic_places:
                break
            if _generic_descriptor(text, q, p, tokens):
                break
            if cls == "City" and (
                text.startswith(("镇", "乡", "街道", "办事处"), end_pos)
            ):
                cls = "CountyLevelCity"
            out.append(_Span(q, end_pos, cls, f"place.suffix.{suffix}", prio=1))
            break
    return out


def _proper_token(token: str, rules: Rules) -> bool:
    """A whole token like "鲁庄镇" may be a place unless the lexicon knows it as a common word."""
    t = lexicon.tag(token)
    return t is None or (t in lexicon.PROPER_TAGS and token not in rules.generic_places)


def _generic_descriptor(text: str, q: int, p: int, tokens: list[tuple[int, int]]) -> bool:
    """One frequent common noun before the suffix ("智慧社区", "城市社区") is a description."""
    name = text[q:p]
    if (q, p) not in set(tokens):
        return False
    return lexicon.tag(name) in ("n", "vn", "an", "a", "v") and lexicon.freq(name) > 1000


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
    raw = rules.raw
    starts = sorted({s for s, _ in tokens})
    out = []
    for end_pos in range(1, len(text) + 1):
        match = None
        for suffix, cls in rules.org_suffixes:
            if text.endswith(suffix, 0, end_pos):
                match = (suffix, cls)
                break
        if match is None:
            continue
        suffix, cls = match
        p = end_pos - len(suffix)
        if end_pos < len(text) and text[end_pos] in raw.get("org_not_followed_by", {}).get(
            suffix, ""
        ):
            continue
        q = _org_name_start(text, p, cls, tokens, rules, places, quotes)
        if q is None:
            # "中原区委": a unit directly followed by 委.
            continue
        out.append(_Span(q, end_pos, cls, f"org.suffix.{suffix}", prio=2))
    # Keep the longest organisation ending at each position, drop nested duplicates.
    out.sort(key=lambda s: (s.end, s.start))
    best: dict[int, _Span] = {}
    for s in out:
        if s.end not in best or s.start < best[s.end].start:
            best[s.end] = s
    return list(best.values())


def _org_name_start(
    text: str, p: int, cls: str, tokens: list[tuple[int, int]], rules: Rules,
    places: list[_Span], quotes: list[tuple[int, int]],
) -> int | None:  # fmt: skip
    """Where the owner's name before an organisation suffix starts, or None if generic."""
    max_chars = rules.raw["max_organisation_chars"]
    # A quoted name right before the suffix: “四个中心”联合党委.
    if p > 0 and text[p - 1] in CLOSE_QUOTES:
        for qs, qe in quotes:
            if qe == p - 1:
                return qs - 1
    # A place right before the suffix owns it: "郑庵镇党委", "中原区委".
    place = next((s for s in places if s.end == p), None)
    if place is not None:
        return place.start
    q = p
    token_start = {e: s for s, e in tokens}
    while q > 0 and p - q < max_chars:
        place = next((s for s in places if s.end == q), None)
        if place is not None:
            q = place.start
            break  # a place starts the name: "中原区非公经济组织党建工作委员会"
        prev = token_start.get(q)
        if prev is None:
            break
        piece = text[prev:q]
        if piece in rules.generic_org_heads or piece in rules.place_stop:
            break
        if not all(_NAME_CHAR.match(c) for c in piece):
            break
        t = lexicon.tag(piece)
        if t is not None and t not in lexicon.NAME_TAGS and not piece.isdigit():
            break
        q = prev
    if q == p:
        return p if cls == "TemporaryPartyBranch" else None
    name = text[q:p]
    if name in rules.generic_org_heads or (len(name) < 2 and cls != "TemporaryPartyBranch"):
        return None
    return q


# --------------------------------------------------------------------------- people


def _people(text: str, tokens: list[tuple[int, int]], rules: Rules) -> list[_Span]:
    raw = rules.raw
    out = []
    titles_before = sorted(raw["person_titles_before"], key=len, reverse=True)
    all_titles = titles_before + raw["person_titles_after"]
    for title in titles_before:
        for m in re.finditer(re.escape(title), text):
            # "总书记" is not "书记": only the longest title ending here counts.
            if any(
                len(t) > len(title) and text.endswith(t, 0, m.end()) for t in all_titles
            ):
                continue
            i = m.end()
            while i < len(text) and text[i] == " ":
                i += 1
            end = _name_end(text, i, tokens, rules)
            if end is not None:
                out.append(_Span(i, end, "Person", f"person.title.{title}", prio=2))
    for title in raw["person_titles_after"]:
        for m in re.finditer(re.escape(title), text):
            for k in (3, 2, 4):
                i = m.start() - k
                if i >= 0 and (i, m.start()) in set(tokens) and (
                    _name_end(text, i, tokens, rules) == m.start()
                ):
                    out.append(_Span(i, m.start(), "Person", f"person.title_after.{title}"))
                    break
    # A heading or byline "…党委书记 马东亮": a title, a space, a name ending the line.
    titles = "|".join(map(re.escape, titles_before))
    for m in re.finditer(rf"(?:{titles}) +([\u4e00-\u9fff]{{2,4}})$", text):
        if _is_surname_at(text, m.start(1), rules):
            out.append(_Span(m.start(1), m.end(1), "Person", "person.title_line", prio=3))
    # A quoted nickname right before a name: “警界花木兰”刘成晓.
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
    if name.endswith(("长", "员", "者", "记", "们", "民", "书")):
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
            if name in ("文图", "摄影", "报道", "文", "图") or not _is_surname_at(text, start, rules):
                continue
            out.append(_Span(start, start + len(name), "Person", "person.byline", prio=3))
    return out


# --------------------------------------------------------------------------- programmes, events


def _programmes(text: str, quotes: list[tuple[int, int]], rules: Rules) -> list[_Span]:
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
        after = text[qe + 1 : qe + 1 + 6]
        before = text[max(0, qs - 1 - 6) : qs - 1]
        kind = next((k for k in kinds if after.startswith(k)), None)
        verb = next((v for v in raw["programme_verbs"] if before.endswith(v)), None)
        inner = any(name.endswith(k) for k in raw["programme_inner_kinds"])
        lead = any(before.endswith(w) for w in raw["slogan_lead_words"])
        if lead and not kind:
            continue
        if kind or inner or (verb and _looks_like_name(name)):
            rule = "programme.kind" if kind else "programme.inner" if inner else "programme.verb"
            out.append(_Span(qs, qe, "Programme", rule, prio=2))
    for pattern in raw["programme_bare_patterns"]:
        for m in re.finditer(pattern, text):
            if not _inside_quotes(quotes, m.start(), m.end()):
                out.append(_Span(m.start(), m.end(), "Programme", "programme.bare", prio=1))
    return out


def _looks_like_name(name: str) -> bool:
    """Short, or numbered ("四个一", "1+N"), rather than a sentence-like slogan."""
    return len(name) <= 8 or bool(re.search(r"[0-9一二三四五六七八九十两]", name))


def _events(text: str, rules: Rules) -> list[_Span]:
    raw = rules.raw
    out = []
    suffixes = "|".join(sorted(map(re.escape, raw["event_suffixes"]), key=len, reverse=True))
    pattern = re.compile(
        rf"((?:\d{{4}}年|郑州市|全市|全国|全区|全省)[^，。；！？、“”]{{0,{raw['max_event_chars']}}}?(?:{suffixes}))"
    )
    for m in pattern.finditer(text):
        out.append(_Span(m.start(1), m.end(1), "Event", "event.suffix", prio=2))
    return out


# --------------------------------------------------------------------------- entry point


def recognise(
    sentence: Sentence, tokens: list[tuple[int, int]], rules: Rules | None = None
) -> list[Mention]:
    """All mentions in one sentence; places never overlap each other."""
    rules = rules or load_rules()
    text = sentence.text
    starts = {s for s, _ in tokens}
    quotes = _quoted_spans(text)

    gaz = _gazetteer_places(text, starts, rules)
    gaz += _short_form_places(text, rules, gaz)
    places = _choose(gaz)
    places = _choose(places + _suffix_places(text, tokens, rules, places, quotes))
    orgs = _organisations(text, tokens, rules, places, quotes)
    people = _choose(_people(text, tokens, rules) + byline_people(text, rules))
    programmes = _choose(_programmes(text, quotes, rules))
    events = _choose(_events(text, rules))

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
