"""The administrative-division gazetteer (NBS 2023 codes, see data/SOURCES.md).

Turns the CSVs into ``Division`` records with their class, canonical name and the
surface forms an article may use (办事处 for 街道, 管城区 for 管城回族区, a street's
short form).  Which short forms count in which context is decided by the recogniser.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"
RULES = Path(__file__).resolve().parent / "rules"


@dataclass(frozen=True)
class Division:
    code: str  # 12-digit official code
    name: str  # canonical name (zone prefixes and committee suffixes removed)
    official: str  # name exactly as in the source data
    cls: str  # ontology class local name
    parent: str | None  # parent's 12-digit code


@dataclass
class Gazetteer:
    divisions: dict[str, Division] = field(default_factory=dict)  # code -> division
    forms: dict[str, list[str]] = field(default_factory=dict)  # full surface form -> codes
    short_forms: dict[str, list[str]] = field(default_factory=dict)  # bare short form -> codes
    stems: dict[str, list[str]] = field(default_factory=dict)  # "郑州" -> 郑州市, "中原" -> 中原区
    local_stems: dict[str, list[str]] = field(default_factory=dict)  # "申河" -> 申河社区

    def lookup(self, form: str) -> list[Division]:
        return [self.divisions[c] for c in self.forms.get(form, [])]

    def lookup_short(self, form: str) -> list[Division]:
        return [self.divisions[c] for c in self.short_forms.get(form, [])]

    def lookup_stem(self, form: str) -> list[Division]:
        """A bare name used as a whole word: "郑州", "登封", "莲湖"."""
        codes = self.stems.get(form, []) + self.short_forms.get(form, [])
        return [self.divisions[c] for c in dict.fromkeys(codes)]

    def ancestors(self, code: str) -> list[Division]:
        out = []
        parent = self.divisions[code].parent
        while parent and parent in self.divisions:
            out.append(self.divisions[parent])
            parent = self.divisions[parent].parent
        return out

    def is_within(self, code: str, ancestor: str) -> bool:
        return any(d.code == ancestor for d in self.ancestors(code))


def pad_code(code: str) -> str:
    """NBS short codes are prefixes: pad on the right to the official 12 digits."""
    return code.ljust(12, "0")


def _county_class(name: str, rules: dict) -> str:
    for suffix, cls in rules["county_suffix_classes"].items():
        if name.endswith(suffix):
            return cls
    return "District"


def _canonical(name: str, level: str, rules: dict) -> tuple[str, str | None]:
    """(canonical name, class) for one CSV row; class None means 'not a place we type'."""
    if level == "province":
        return name, "Province"
    if level == "city":
        return name, "City"
    if level == "county":
        return name, _county_class(name, rules)
    if level == "township":
        for prefix in rules["zone_prefixes"]:
            if name.startswith(prefix) and len(name) > len(prefix) + 1:
                name = name[len(prefix) :]
        for suffix, cls in rules["township_suffix_classes"].items():
            if name.endswith(suffix):
                return name, cls
        return name, None
    # village level: committees are named "X社区居委会", "X村委会" ...
    for suffix, replacement in rules["committee_suffixes"].items():
        if name.endswith(suffix):
            name = name[: -len(suffix)] + replacement
            break
    if name.endswith("社区"):
        return name, "Community"
    if not name.endswith("村"):
        name += "村"
    return name, "Village"


def _strip_suffix(name: str, suffixes: dict) -> str:
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _add(index: dict[str, list[str]], form: str, code: str) -> None:
    codes = index.setdefault(form, [])
    if code not in codes:
        codes.append(code)


@lru_cache(maxsize=1)
def load_gazetteer() -> Gazetteer:
    rules = yaml.safe_load((RULES / "gazetteer.yaml").read_text(encoding="utf-8"))
    gaz = Gazetteer()
    files = ["zhengzhou_divisions.csv", "historical_divisions.csv", "zhengzhou_villages.csv"]
    for fname in files:
        with open(DATA / fname, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                name, cls = _canonical(row["name"], row["level"], rules)
                code = pad_code(row["code"])
                parent = pad_code(row["parent_code"]) if row["parent_code"] else None
                div = Division(code, name, row["name"], cls or "Place", parent)
                gaz.divisions[code] = div
                if cls is None:
                    continue
                _add(gaz.forms, name, code)
                if row["name"] != name:
                    _add(gaz.forms, row["name"], code)
                for suffix, alternatives in rules["suffix_alternatives"].items():
                    if name.endswith(suffix):
                        for alt in alternatives:
                            _add(gaz.forms, name[: -len(suffix)] + alt, code)
                if cls in rules["short_form_classes"]:
                    stem = _strip_suffix(name, rules["township_suffix_classes"])
                    if len(stem) >= 2:
                        _add(gaz.short_forms, stem, code)
                if cls in ("Community", "Village") and len(name) >= 4:
                    _add(gaz.local_stems, name[: -2 if name.endswith("社区") else -1], code)
                if cls in rules["stem_classes"] and not name.endswith(("开发区", "实验区")):
                    stem = _strip_suffix(name, rules["stem_suffixes"])
                    if len(stem) >= 2:
                        _add(gaz.stems, stem, code)
    with open(DATA / "aliases.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            for code in list(gaz.forms.get(row["official"], [])):
                _add(gaz.forms, row["alias"], code)

    return gaz
