"""Ingest: from raw newspaper text to clean, addressable sentences.

Data flows one way::

    raw text -> lines -> blocks (runs of non-blank lines) -> units (paragraph
    candidates) -> paragraphs (column breaks rejoined, captions set aside)
    -> cleaned text + raw offsets -> dedup -> sentences -> metadata

Every cleaned character keeps the index of the raw character it came from, so a
fact found in a sentence can be shown in the original file.  Cleaning only drops
characters or replaces one character by one character (see ``char_matches``).

Layout patterns (stops, byline markers, limits) live in ``kg/rules/ingest.yaml``.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from kg.iri import path_segment
from kg.model import Document, Sentence

RULES_PATH = Path(__file__).parent / "rules" / "ingest.yaml"

# Characters that end a line (str.splitlines' set); "\r\n" counts once.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_BREAK_CHARS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_MARKDOWN_HEADING = re.compile(r"^[ \t\u3000]*(#{1,6})(?:[ \t\u3000]+|$)")
# A share of control characters above this marks a decoded file as binary.
_MAX_CONTROL_SHARE = 0.1


class IngestError(Exception):
    """A file that cannot be ingested; ``str(e)`` names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        # One line, whatever the OS put in the message.
        super().__init__(" ".join(f"{self.path}: {problem}".split()))


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rules:
    """The layout rules of ``ingest.yaml``, as sets and numbers."""

    stops: frozenset[str]
    soft_stops: frozenset[str]
    ellipsis: str
    closers: frozenset[str]
    final_punct: frozenset[str]
    sentence_punct: frozenset[str]
    full_stops: frozenset[str]
    continuation_start: frozenset[str]
    open_end: frozenset[str]
    ordinals: frozenset[str]
    label_colons: frozenset[str]
    label_max_chars: int
    punct_map: dict[str, str]
    heading_max_chars: int
    caption_max_chars: int
    max_captions_skipped: int
    title_min_ideographs: int
    max_sentence_chars: int
    long_sentence_breaks: str
    byline_re: re.Pattern[str]
    byline_suffixes: tuple[str, ...]
    byline_name_min: int
    byline_name_max: int
    future_year_prefixes: frozenset[str]


@lru_cache(maxsize=1)
def rules() -> Rules:
    """Load ``kg/rules/ingest.yaml`` once."""
    d = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    markers = sorted(d["byline_markers"], key=len, reverse=True)  # 本报记者 before 记者
    # A marker counts only at the start of the line or after a separator, so that
    # words such as 记者节 inside a headline are not read as bylines.
    byline_re = re.compile(r"(?:^|(?<=[\s、，,/|（(]))(" + "|".join(map(re.escape, markers)) + ")")
    return Rules(
        stops=frozenset(d["sentence_stops"]),
        soft_stops=frozenset(d["soft_stops"]),
        ellipsis=d["ellipsis"],
        closers=frozenset(d["closers"]),
        final_punct=frozenset(d["final_punct"]),
        sentence_punct=frozenset(d["sentence_punct"]),
        full_stops=frozenset(d["full_stops"]),
        continuation_start=frozenset(d["continuation_start"]),
        open_end=frozenset(d["open_end"]),
        ordinals=frozenset(d["ordinals"]),
        label_colons=frozenset(d["label_colons"]),
        label_max_chars=int(d["label_max_chars"]),
        punct_map=dict(d["punct_map"]),
        heading_max_chars=int(d["heading_max_chars"]),
        caption_max_chars=int(d["caption_max_chars"]),
        max_captions_skipped=int(d["max_captions_skipped"]),
        title_min_ideographs=int(d["title_min_ideographs"]),
        max_sentence_chars=int(d["max_sentence_chars"]),
        long_sentence_breaks=d["long_sentence_breaks"],
        byline_re=byline_re,
        byline_suffixes=tuple(sorted(d["byline_suffixes"], key=len, reverse=True)),
        byline_name_min=int(d["byline_name_min"]),
        byline_name_max=int(d["byline_name_max"]),
        future_year_prefixes=frozenset(d["future_year_prefixes"]),
    )


def char_matches(raw_char: str, clean_char: str) -> bool:
    """True when cleaning may turn ``raw_char`` into ``clean_char``.

    Cleaning keeps characters, except that any kept whitespace becomes " " and
    ASCII punctuation between CJK text becomes its full-width form.
    """
    if raw_char == clean_char:
        return True
    if clean_char == " ":
        return raw_char.isspace()
    return rules().punct_map.get(raw_char) == clean_char


# ------------------------------------------------------------------ characters


def _is_ideograph(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3FFFF
        or o == 0x3007  # 〇
    )


def _is_wide(ch: str) -> bool:
    """CJK ideographs and CJK/full-width punctuation (incl. “”…—·)."""
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0xFE30 <= o <= 0xFE4F
        or 0xFF00 <= o <= 0xFFEF
        or 0x20000 <= o <= 0x3FFFF
        or 0x2010 <= o <= 0x205E
        or o == 0xB7
    )


def _invisible(ch: str) -> bool:
    """Control and format characters (zero-width spaces, BOMs, bidi marks): noise."""
    return not ch.isprintable() and unicodedata.category(ch) in ("Cc", "Cf")


def _ideograph_count(text: str) -> int:
    return sum(1 for ch in text if _is_ideograph(ch))


# ------------------------------------------------------------------- reading


def read_text(path: str | Path) -> str:
    """Decode a UTF-8 text file; a leading BOM is dropped (offsets index the result)."""
    p = Path(path)
    data = _read_bytes(p)
    if not data:
        raise IngestError(p, "empty file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise IngestError(p, f"not UTF-8: invalid byte 0x{data[0]:02x} at byte offset 0 (UTF-16?)")
    if b"\x00" in data:
        raise IngestError(p, "binary file, not text (contains NUL bytes)")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = bom + e.start
        raise IngestError(
            p, f"not UTF-8: invalid byte 0x{data[offset]:02x} at byte offset {offset}"
        ) from None
    if _control_share(text) > _MAX_CONTROL_SHARE:
        raise IngestError(p, "binary file, not text (too many control characters)")
    if not text.strip():
        raise IngestError(p, "empty file (whitespace only)")
    return text


def _read_bytes(p: Path) -> bytes:
    if p.is_dir():
        raise IngestError(p, "is a directory, not a file")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise IngestError(p, "no such file") from None
    except OSError as e:
        raise IngestError(p, f"cannot read: {e.strerror or e}") from None


def _control_share(text: str) -> float:
    if not text:
        return 0.0
    controls = sum(1 for ch in text if ch not in "\t\n\r\x0c" and unicodedata.category(ch) == "Cc")
    return controls / len(text)


def ingest_file(path: str | Path) -> Document:
    """Read and parse one article; its doc_id is the file stem, made safe for IRIs
    (``my file.txt`` → ``my%20file``)."""
    p = Path(path)
    return parse_document(read_text(p), path_segment(p.stem), str(p))


# -------------------------------------------------------------- lines, blocks


@dataclass(frozen=True)
class _Line:
    start: int  # raw[start:end] is the line without its break
    end: int
    brk: int | None  # raw index of the line break after it (None on the last line)


@dataclass
class _Unit:
    """A paragraph candidate: one or more raw lines."""

    lines: list[_Line]
    gap: int  # blank lines before it; 0 = same block as the previous unit
    text: str = ""  # the stripped lines concatenated, for classification only
    md_level: int = 0  # markdown heading level, 0 if none
    heading: bool = False  # headline, sub-heading, byline or title-only caption


def _split_lines(raw: str) -> list[_Line]:
    lines, pos = [], 0
    for m in _LINE_BREAK.finditer(raw):
        lines.append(_Line(pos, m.start(), m.start()))
        pos = m.end()
    lines.append(_Line(pos, len(raw), None))
    return lines


def _blocks(raw: str, lines: list[_Line]) -> list[tuple[int, list[_Line]]]:
    """Runs of non-blank lines, each with the number of blank lines before it."""
    blocks: list[tuple[int, list[_Line]]] = []
    current: list[_Line] = []
    gap = 0
    for line in lines:
        if raw[line.start : line.end].strip():
            current.append(line)
            continue
        if current:
            blocks.append((gap, current))
            current, gap = [], 0
        gap += 1
    if current:
        blocks.append((gap, current))
    return blocks


def _units(raw: str, R: Rules) -> list[_Unit]:
    units: list[_Unit] = []
    for gap, lines in _blocks(raw, _split_lines(raw)):
        units.extend(_block_units(raw, gap, lines, R))
    for u in units:
        u.text = "".join(raw[ln.start : ln.end].strip() for ln in u.lines)
        u.heading = _is_heading(u.text, u.md_level, R)
    return units


def _block_units(raw: str, gap: int, lines: list[_Line], R: Rules) -> list[_Unit]:
    """Split a block where a new paragraph visibly starts.

    Lines of one block are normally column-broken pieces of one paragraph.  A new
    unit starts at a markdown heading, at an indented line (Chinese paragraphs are
    indented, column continuations are not), and at every line of a block made only
    of short unpunctuated lines (a two-line headline, a headline plus byline).
    """
    texts = [raw[ln.start : ln.end] for ln in lines]
    titles_only = len(lines) > 1 and all(_title_like_line(t.strip(), R) for t in texts)
    # When every line is indented, indentation says nothing: one paragraph per line
    # is then the likely format, so a line after a finished sentence starts anew.
    all_indented = len(lines) > 1 and all(t[:1].isspace() for t in texts)
    units: list[_Unit] = []
    for k, (line, text) in enumerate(zip(lines, texts, strict=True)):
        md = _MARKDOWN_HEADING.match(text)
        level = len(md.group(1)) if md else 0
        if md:
            line = _Line(line.start + md.end(), line.end, line.brk)  # marker is dropped
        if all_indented:
            indented = k > 0 and _ends_final(texts[k - 1], R)
        else:
            indented = text[:1].isspace()
        new = not units or level or titles_only or indented or units[-1].md_level
        if new:
            units.append(_Unit([line], 0 if units else gap, md_level=level))
        else:
            units[-1].lines.append(line)
    return units


def _title_like_line(text: str, R: Rules) -> bool:
    return len(text) <= R.heading_max_chars and not any(ch in R.sentence_punct for ch in text)


def _ends_final(text: str, R: Rules) -> bool:
    """Does the text end a sentence (closing quotes/brackets ignored)?"""
    body = text.rstrip()
    while body and body[-1] in R.closers:
        body = body[:-1]
    return bool(body) and body[-1] in R.final_punct


def _is_heading(text: str, md_level: int, R: Rules) -> bool:
    """Headline, sub-heading or byline: short, no full stop, not a broken sentence.

    A short line with no sentence punctuation at all is a heading.  One with commas
    is a heading only in the "label：subtitle" form (筑体系：构建…体系); otherwise it
    is the first line of a paragraph cut by the column edge.
    """
    if md_level:
        return True
    if not text or len(text) > R.heading_max_chars or _ends_final(text, R):
        return False
    if any(ch in R.full_stops for ch in text):
        return False
    if not any(ch in R.sentence_punct for ch in text):
        return True
    colon = next((i for i, ch in enumerate(text) if ch in R.label_colons), -1)
    return 0 < colon <= R.label_max_chars


# ------------------------------------------------------ rejoining column breaks


def _is_open(u: _Unit, R: Rules) -> bool:
    """Body text that stops mid-sentence (the column edge cut it)."""
    return bool(u.text) and not u.heading and not _ends_final(u.text, R)


def _strong_continuation(text: str, R: Rules) -> bool:
    """Text that can only be the tail of a sentence: starts with punctuation, or
    with one character then a comma/closing quote (源、补齐…, 心”，社区…)."""
    if not text:
        return False
    if text[0] in R.continuation_start:
        return True
    return (
        len(text) > 1
        and _is_ideograph(text[0])
        and text[0] not in R.ordinals  # 一、… starts a list item
        and (text[1] in "，、," or text[1] in R.closers)
    )


def _can_join(cur: _Unit, nxt: _Unit, R: Rules) -> bool:
    """May ``nxt`` (the next block) continue the open paragraph ``cur``?

    Across one blank line the next block must start like running text (CJK,
    digit, letter, continuation punctuation); across more blank lines only a
    strong continuation cue counts.  Headings never continue a paragraph.
    """
    if nxt.gap == 0 or nxt.md_level or nxt.heading or not nxt.text:
        return False
    strong = _strong_continuation(nxt.text, R)
    if nxt.gap > 1 and not strong:
        return False
    return strong or nxt.text[0].isalnum() or cur.text[-1] in R.open_end


def _captions_to_skip(cur: _Unit, units: list[_Unit], i: int, R: Rules) -> int:
    """How many caption blocks sit between ``cur`` and its continuation (0: none).

    A picture placed between two columns leaves its caption, isolated by two or
    more blank lines, between the halves of a sentence (…总投资40.92亿 / caption /
    元，市重点项目…).
    """
    for k in range(1, R.max_captions_skipped + 1):
        if i + k >= len(units):
            return 0
        cap = units[i + k - 1]
        if cap.gap < 2 or cap.md_level or len(cap.text) > R.caption_max_chars:
            return 0
        if _can_join(cur, units[i + k], R):
            return k
    return 0


def _join(cur: _Unit, nxt: _Unit) -> None:
    cur.lines.extend(nxt.lines)
    cur.text += nxt.text


def _paragraphs(units: list[_Unit], R: Rules) -> list[_Unit]:
    """Rejoin column-broken paragraphs; captions jumped over follow the paragraph."""
    out: list[_Unit] = []
    i = 0
    while i < len(units):
        cur = _Unit(list(units[i].lines), units[i].gap, units[i].text, units[i].md_level)
        cur.heading = units[i].heading
        i += 1
        held: list[_Unit] = []
        while i < len(units) and _is_open(cur, R):
            if _can_join(cur, units[i], R):
                _join(cur, units[i])
                i += 1
                continue
            k = _captions_to_skip(cur, units, i, R)
            if not k:
                break
            held.extend(units[i : i + k])
            _join(cur, units[i + k])
            i += k + 1
        out.append(cur)
        out.extend(held)
    return out


# -------------------------------------------------------------------- cleaning


@dataclass
class _Clean:
    """A kept paragraph: cleaned text and the raw index of each character."""

    text: str
    offsets: list[int]
    heading: bool
    md_level: int
    index: int = 0


def _raw_indices(p: _Unit) -> list[int]:
    """Raw indices of the paragraph's characters; the line break between two of
    its lines is kept as a whitespace separator (dropped or kept by _clean)."""
    idx: list[int] = []
    for k, line in enumerate(p.lines):
        prev = p.lines[k - 1] if k else None
        if prev is not None and prev.brk is not None:
            idx.append(prev.brk)
        idx.extend(range(line.start, line.end))
    return idx


def _clean(raw: str, p: _Unit, R: Rules) -> _Clean:
    """Drop invisible characters and layout spaces, normalise ASCII punctuation.

    A whitespace run is dropped when it touches CJK text on either side (column
    padding, 全市 202个), kept as one " " between Latin/digit tokens, and kept as
    one " " inside a heading line, where it separates title from name
    (党委书记 张三).  A run containing a line break follows the body rule.
    Punctuation is normalised first, so "挑”, 1479" loses its space too.
    """
    chars, offsets, breaks = _collapse_spaces(raw, _raw_indices(p))
    _normalise_punct(chars, R)
    kept = [
        k
        for k, ch in enumerate(chars)
        if ch != " " or _keep_space(chars, k, p.heading and not breaks[k])
    ]
    return _Clean(
        "".join(chars[k] for k in kept), [offsets[k] for k in kept], p.heading, p.md_level
    )


def _collapse_spaces(raw: str, indices: list[int]) -> tuple[list[str], list[int], list[bool]]:
    """Characters without invisible ones; each whitespace run becomes one " "
    (at the raw index of its first character), flagged when it spans a line break."""
    chars: list[str] = []
    offsets: list[int] = []
    breaks: list[bool] = []
    for i in indices:
        ch = raw[i]
        if ch.isspace():
            is_break = ch in _BREAK_CHARS
            if chars and chars[-1] == " ":
                breaks[-1] = breaks[-1] or is_break
            else:
                chars.append(" ")
                offsets.append(i)
                breaks.append(is_break)
        elif not _invisible(ch):
            chars.append(ch)
            offsets.append(i)
            breaks.append(False)
    return chars, offsets, breaks


def _keep_space(chars: list[str], k: int, heading: bool) -> bool:
    if k == 0 or k == len(chars) - 1:
        return False
    return heading or not (_is_wide(chars[k - 1]) or _is_wide(chars[k + 1]))


def _normalise_punct(chars: list[str], R: Rules) -> None:
    """ASCII ( ) , ; : ! ? next to CJK text -> full width, in place, left to right
    (so 人才(团队),开设 becomes 人才（团队），开设)."""
    for k, ch in enumerate(chars):
        full = R.punct_map.get(ch)
        if full is None:
            continue
        if _is_wide(_neighbour(chars, k, -1)) or _is_wide(_neighbour(chars, k, +1)):
            chars[k] = full


def _neighbour(chars: list[str], k: int, step: int) -> str:
    j = k + step
    if 0 <= j < len(chars) and chars[j] == " ":
        j += step
    return chars[j] if 0 <= j < len(chars) else "a"  # "a": not wide


def _dedup(paras: list[_Clean]) -> tuple[list[_Clean], int]:
    """Drop punctuation-only paragraphs (……) and verbatim repeats (counted)."""
    kept: list[_Clean] = []
    seen: set[str] = set()
    dropped = 0
    for p in paras:
        if not any(ch.isalnum() for ch in p.text):
            continue
        key = p.text.replace(" ", "")
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(p)
    return kept, dropped


# ------------------------------------------------------------------- sentences


def _sentence_spans(text: str, heading: bool, R: Rules) -> list[tuple[int, int]]:
    """Spans of sentences in a cleaned paragraph, surrounding spaces trimmed.

    A sentence ends after 。！？!? , after ；; (a clause list item; it only
    matters when text follows), and after an ellipsis run (……).  Following stops
    and closing quotes/brackets belong to it (…根基。” ).  Quotes are not tracked:
    a quotation of several sentences is split like running text.  Headings are
    one sentence.  Pieces longer than max_sentence_chars are cut at ；，、.
    """
    raw_spans = [(0, len(text))] if heading else list(_stop_spans(text, R))
    spans = []
    for s, e in raw_spans:
        for cs, ce in _cut_long(text, s, e, R):
            while cs < ce and text[cs] == " ":
                cs += 1
            while ce > cs and text[ce - 1] == " ":
                ce -= 1
            if cs < ce:
                spans.append((cs, ce))
    return spans


def _stop_spans(text: str, R: Rules):
    n, start, k = len(text), 0, 0
    while k < n:
        ch = text[k]
        if ch in R.stops or ch in R.soft_stops:
            end = k + 1
        elif ch == R.ellipsis and k + 1 < n and text[k + 1] == R.ellipsis:
            end = k + 2
        else:
            k += 1
            continue
        while end < n and (
            text[end] in R.stops or text[end] == R.ellipsis or text[end] in R.closers
        ):
            end += 1
        yield start, end
        start = k = end
    if start < n:
        yield start, n


def _cut_long(text: str, s: int, e: int, R: Rules):
    limit = R.max_sentence_chars
    while e - s > limit:
        window = s + limit
        cut = max(text.rfind(ch, s, window) for ch in R.long_sentence_breaks)
        cut = cut + 1 if cut > s else window  # no break in reach: hard cut
        yield s, cut
        s = cut
    yield s, e


def _sentences(doc_id: str, paras: list[_Clean], R: Rules) -> list[Sentence]:
    out: list[Sentence] = []
    for p in paras:
        for s, e in _sentence_spans(p.text, p.heading, R):
            offs = tuple(p.offsets[s:e])
            out.append(
                Sentence(
                    doc_id=doc_id,
                    index=len(out),
                    text=p.text[s:e],
                    start=offs[0],
                    end=offs[-1] + 1,
                    offsets=offs,
                    paragraph=p.index,
                    is_heading=p.heading,
                )
            )
    return out


# -------------------------------------------------------------------- metadata


def _title(paras: list[_Clean], R: Rules) -> str:
    """The headline: a top-level markdown heading, else the first heading that is
    not a byline and has enough ideographs (skips banner fragments like 这奋进 年),
    else the first non-byline heading, else ""."""
    for p in paras:
        if p.md_level == 1:
            return p.text
    candidates = [p.text for p in paras if p.heading and not _byline_names(p.text, R)]
    for text in candidates:
        if _ideograph_count(text) >= R.title_min_ideographs:
            return text
    return candidates[0] if candidates else ""


def _byline_names(text: str, R: Rules) -> list[str]:
    """Names after byline markers: 本报记者 孙志刚 通讯员 蔚光勋 文图 -> 孙志刚, 蔚光勋."""
    parts = R.byline_re.split(text)
    names = []
    for segment in parts[2::2]:  # the text after each marker
        for token in re.split(r"[\s、，,/|（）()]+", segment):
            name = _strip_credit(token, R)
            if R.byline_name_min <= len(name) <= R.byline_name_max and all(
                _is_ideograph(ch) or ch == "·" for ch in name
            ):
                names.append(name)
    return names


def _strip_credit(token: str, R: Rules) -> str:
    """孙志刚文图 -> 孙志刚; a bare 文图 -> ''."""
    for suffix in R.byline_suffixes:
        if token == suffix:
            return ""
        if token.endswith(suffix) and len(token) - len(suffix) >= R.byline_name_min:
            return token[: -len(suffix)]
    return token


def _bylines(paras: list[_Clean], R: Rules) -> list[str]:
    names: list[str] = []
    for p in paras:
        if p.heading:  # bylines are short unpunctuated lines
            names.extend(n for n in _byline_names(p.text, R) if n not in names)
    return names


_FULL_DATE = re.compile(r"(?<!\d)((?:1[89]|20)\d\d)年(\d{1,2})月(\d{1,2})[日号]")
_MONTH_DAY = re.compile(r"(?<![\d年])(\d{1,2})月(\d{1,2})[日号]")
_YEAR = re.compile(r"(?<!\d)((?:1[89]|20)\d\d)年")


def _date(sentences: list[Sentence], R: Rules) -> str | None:
    """Best-effort date of the article.

    1. the first full date (2020年10月15日);
    2. else the first month/day whose sentence also states a year
       (10月15日晚，2020年全市…交流会 -> 2020-10-15);
    3. else the latest year stated, ignoring targets (到2035年) -- news reports
       recent events and mentions older years as background ("2016年以来");
    4. else None.
    """
    texts = [s.text for s in sentences]
    for text in texts:
        for m in _FULL_DATE.finditer(text):
            iso = _iso(m.group(1), m.group(2), m.group(3))
            if iso:
                return iso
    for text in texts:
        year = _YEAR.search(text)
        if not year:
            continue
        for m in _MONTH_DAY.finditer(text):
            iso = _iso(year.group(1), m.group(1), m.group(2))
            if iso:
                return iso
    years = [
        int(m.group(1))
        for text in texts
        for m in _YEAR.finditer(text)
        if not (m.start() and text[m.start() - 1] in R.future_year_prefixes)
    ]
    return str(max(years)) if years else None


def _iso(year: str, month: str, day: str) -> str | None:
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


# ------------------------------------------------------------------------ main


def parse_document(raw: str, doc_id: str, path: str = "") -> Document:
    """Turn the decoded text of one article into a Document (pure function)."""
    R = rules()
    cleaned = [_clean(raw, p, R) for p in _paragraphs(_units(raw, R), R)]
    paras, dropped = _dedup(cleaned)
    for i, p in enumerate(paras):
        p.index = i
    sentences = _sentences(doc_id, paras, R)
    return Document(
        doc_id=doc_id,
        path=path,
        raw=raw,
        title=_title(paras, R),
        bylines=_bylines(paras, R),
        date=_date(sentences, R),
        sentences=sentences,
        duplicates_dropped=dropped,
    )
