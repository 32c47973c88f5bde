"""Readable, stable IRIs: ``res:street/jianshelu-jiedao`` from the pinyin of the label."""

from __future__ import annotations

import hashlib
import re

from pypinyin import Style, lazy_pinyin

ONTOLOGY = "https://w3id.org/jiceng/ontology#"
RESOURCE = "https://w3id.org/jiceng/resource/"

KIND = {
    "Person": "person", "Organisation": "organisation",
    "PartyOrganisation": "party-organisation", "PartyCommittee": "party-committee",
    "PartyBranch": "party-branch", "TemporaryPartyBranch": "temporary-party-branch",
    "PartyGroup": "party-group", "GovernmentBody": "government-body",
    "Enterprise": "enterprise", "SocialOrganisation": "social-organisation",
    "Place": "place", "Province": "province", "City": "city", "District": "district",
    "County": "county", "CountyLevelCity": "county-level-city", "Street": "street",
    "Town": "town", "Township": "township", "Community": "community", "Village": "village",
    "Road": "road", "Compound": "compound", "Programme": "programme", "Post": "post",
    "Event": "event", "Statistic": "statistic", "Document": "document",
    "Sentence": "sentence", "Statement": "statement",
}  # fmt: skip

# What no IRI may carry unescaped (RFC 3987), plus "%" so that escapes stay unambiguous.
_UNSAFE = re.compile(r'[\x00-\x20<>"{}|^`\\%\x7f]')


def path_segment(text: str) -> str:
    """``text`` usable as one IRI path segment: unsafe characters percent-encoded (UTF-8),
    everything else, Chinese included, kept as it is."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


# Word-final parts written as their own pinyin word: 建设路|街道 -> jianshelu-jiedao.
_SUFFIXES = sorted(
    [
        "街道", "办事处", "社区", "新区", "党工委", "党委", "联合党委", "临时党支部", "党支部",
        "党总支", "党小组", "委员会", "有限公司", "公司", "集团", "区", "市", "县", "镇", "乡",
        "村", "省", "书记", "工程", "计划", "制度", "机制", "模式", "工作法", "交流会",
    ],
    key=len,
    reverse=True,
)  # fmt: skip


def pinyin(text: str) -> str:
    """Toneless pinyin, one word per meaningful chunk, for ``@zh-Latn-pinyin`` labels."""
    return " ".join(_chunks(text))


def _chunks(text: str) -> list[str]:
    out: list[str] = []
    for part in re.split(r"[\s、，,·“”\"'（）()《》【】\-—:：;；/+]+", text):
        if not part:
            continue
        suffix = next((s for s in _SUFFIXES if part.endswith(s) and len(part) > len(s)), None)
        pieces = [part[: -len(suffix)], suffix] if suffix else [part]
        for piece in pieces:
            syllables = lazy_pinyin(piece, style=Style.NORMAL, errors=lambda s: list(s))
            word = "".join(syllables).lower()
            word = re.sub(r"[^a-z0-9]+", "", word)
            if word:
                out.append(word)
    return out


def slug(label: str, cls: str | None = None) -> str:
    if cls == "Person" and 2 <= len(label) <= 4:
        # surname apart from given name, as names are romanised: ma-dongliang
        return "-".join(_chunks(label[0]) + _chunks(label[1:])) or short_hash(label)
    return "-".join(_chunks(label)) or short_hash(label)


def short_hash(*parts: str, n: int = 8) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:n]


def entity_iri(base: str, cls: str, slug_text: str) -> str:
    return f"{base}{KIND.get(cls, 'thing')}/{slug_text}"
