"""Canned queries: ``queries/*.rq`` with grlc-style headers, parameters and name resolution.

Header (YAML after ``#+ ``), as in grlc::

    #+ summary: one line
    #+ description: longer text
    #+ tags: [party-building]
    #+ params:                      # extension: declares type/resolution per parameter
    #+   district: {type: place, classes: [District], description: 区/县}
    #+ defaults:                    # grlc: - name: value
    #+   - unitType: Street
    #+ enumerate:                   # grlc: static values allowed for a parameter
    #+   - unitType: [Street, Community]

Parameters are the query's grlc-named variables: ``?_name`` (required) or ``?__name``
(optional), with grlc type suffixes (``_iri``, ``_integer``, ``_decimal``, ``_date``,
``_zh``, ``_en``, ``_literal``).  Values are bound as typed RDF terms in a VALUES
block the engine inserts (see ``sparqltext.inject_values``), never spliced as text.
A parameter of type place/person/organisation/programme/entity accepts a Chinese name
(``花园路街道`` or ``花园路``), a ``res:`` path or an IRI and is resolved against
rdfs:label / skos:prefLabel / skos:altLabel; ambiguity → ``Ambiguous`` (HTTP 300).
"""

from __future__ import annotations

import inspect
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml

from server import sparqltext

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple

QUERIES_DIR = Path(__file__).resolve().parents[1] / "queries"
JC = "https://w3id.org/jiceng/ontology#"
RESOURCE_BASE = "https://w3id.org/jiceng/resource/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RESERVED = {"format", "timeout"}  # query-string args that are not canned parameters

PLACE_CLASSES = [
    "Province",
    "City",
    "District",
    "County",
    "CountyLevelCity",
    "Street",
    "Town",
    "Township",
    "Community",
    "Village",
    "Road",
    "Compound",
]
ORG_CLASSES = [
    "Organisation",
    "PartyOrganisation",
    "PartyCommittee",
    "PartyBranch",
    "TemporaryPartyBranch",
    "PartyGroup",
    "GovernmentBody",
    "Enterprise",
    "SocialOrganisation",
]
ENTITY_KINDS = {
    "place": PLACE_CLASSES,
    "organisation": ORG_CLASSES,
    "person": ["Person"],
    "programme": ["Programme"],
    "entity": None,  # any labelled resource
}
# Longest first; stripped so that "花园路" finds "花园路街道" (and "郑港" "郑港办事处").
SUFFIXES = sorted(
    [
        "街道办事处",
        "办事处",
        "街道",
        "社区居委会",
        "居委会",
        "村委会",
        "社区",
        "行政村",
        "村",
        "镇",
        "乡",
        "县级市",
        "市",
        "区",
        "县",
        "党工委",
        "党委",
        "党总支",
        "党支部",
        "委员会",
    ],
    key=len,
    reverse=True,
)

_VAR = re.compile(
    r"[?$](__?)([A-Za-z][A-Za-z0-9]*)"
    r"(?:_(iri|literal|number|integer|decimal|date|zh|en|xsd_[A-Za-z]+))?(?![A-Za-z0-9_])"
)


class CannedError(Exception):
    """A user-facing error with the HTTP status the server should answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Candidate:
    iri: str
    label: str
    type: str


class Ambiguous(CannedError):
    def __init__(self, param: str, value: str, candidates: list[Candidate]) -> None:
        super().__init__(
            300, f"parameter {param}={value!r} is ambiguous: {len(candidates)} matches"
        )
        self.param = param
        self.value = value
        self.candidates = candidates

    def as_json(self) -> dict[str, Any]:
        return {
            "error": "ambiguous",
            "message": self.message,
            "param": self.param,
            "value": self.value,
            "candidates": [c.__dict__ for c in self.candidates],
        }


@dataclass
class Param:
    name: str
    var: str  # SPARQL variable name (without ?)
    type: str  # entity kind, "iri", "string", "integer", "decimal", "date", "zh", "en"
    required: bool
    default: str | None = None
    enum: list[str] | None = None
    classes: list[str] | None = None  # jc: local names allowed when resolving names
    description: str = ""
    # A graph pattern the bound value must match, put first in the query when the
    # parameter is given: it restates the query's own filter (the rows do not change),
    # so the engine starts from the value instead of filtering the whole graph.
    pattern: str | None = None


@dataclass
class CannedQuery:
    name: str
    path: Path
    text: str
    summary: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _header(text: str) -> dict[str, Any]:
    lines = []
    for line in text.splitlines():
        if line.startswith("#+"):
            lines.append(line[3:] if line.startswith("#+ ") else line[2:])
        elif lines and line.strip() and not line.startswith("#"):
            break
    if not lines:
        return {}
    meta = yaml.safe_load("\n".join(lines)) or {}
    if not isinstance(meta, dict):
        raise ValueError("header is not a YAML mapping")
    return meta


def _pairs(items: Any) -> dict[str, Any]:
    """grlc lists of one-key mappings (``- name: value``) → dict; plain names → None."""
    out: dict[str, Any] = {}
    if isinstance(items, dict):
        return dict(items)
    for item in items or []:
        if isinstance(item, dict):
            out.update(item)
        else:
            out[str(item)] = None
    return out


def _pattern(path: Path, name: str, var: str, pattern: Any) -> str | None:
    if pattern is None:
        return None
    text = str(pattern).strip()
    if not re.search(re.escape(var) + r"\b", text):
        raise ValueError(f"{path.name}: parameter {name}: its pattern does not use {var}")
    if text.count("{") != text.count("}"):
        raise ValueError(f"{path.name}: parameter {name}: unbalanced braces in its pattern")
    return text


def parse(path: Path) -> CannedQuery:
    text = path.read_text("utf-8")
    try:
        meta = _header(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"{path.name}: bad #+ header: {exc}") from None
    masked = sparqltext.mask(text)
    declared = meta.get("params") or {}
    defaults = _pairs(meta.get("defaults"))
    enums = {k: v for k, v in _pairs(meta.get("enumerate")).items() if v}
    params: dict[str, Param] = {}
    for m in _VAR.finditer(masked):
        underscores, name, suffix = m.group(1), m.group(2), m.group(3)
        if name in params:
            continue
        spec = declared.get(name) or {}
        ptype = spec.get("type") or {"iri": "iri", None: "string", "literal": "string"}.get(
            suffix, suffix
        )
        ptype = {"number": "decimal"}.get(ptype, ptype)
        if (
            ptype not in ENTITY_KINDS
            and ptype not in ("iri", "string", "integer", "decimal", "date", "zh", "en")
            and not str(ptype).startswith("xsd_")
        ):
            raise ValueError(f"{path.name}: parameter {name}: unknown type {ptype!r}")
        classes = spec.get("classes")
        if classes is None and ptype in ENTITY_KINDS:
            classes = ENTITY_KINDS[ptype]
        default = spec.get("default", defaults.get(name))
        params[name] = Param(
            name=name,
            var=m.group(0)[1:],
            type=ptype,
            required=bool(spec.get("required", underscores == "_")) and default is None,
            default=None if default is None else str(default),
            enum=[str(v) for v in (spec.get("enum") or enums.get(name) or [])] or None,
            classes=list(classes) if classes else None,
            description=str(spec.get("description", "")),
            pattern=_pattern(path, name, m.group(0), spec.get("pattern")),
        )
    for name in declared:
        if name not in params:
            raise ValueError(f"{path.name}: parameter {name} declared but not used as ?_{name}")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    return CannedQuery(
        name=path.stem,
        path=path,
        text=text,
        summary=str(meta.get("summary", "")).strip(),
        description=str(meta.get("description", "")).strip(),
        tags=[str(t) for t in tags],
        params=list(params.values()),
        columns=_columns(masked),
    )


def _columns(masked: str) -> list[str]:
    m = re.search(
        r"SELECT\s+(?:DISTINCT\s+|REDUCED\s+)?(.*?)\s*(?:WHERE\b|\{)", masked, re.I | re.S
    )
    if not m:
        return []
    proj = re.sub(r"\(.*?\bAS\s+[?$](\w+)\s*\)", r"?\1", m.group(1), flags=re.I | re.S)
    return re.findall(r"[?$](\w+)", proj)


def load_all(directory: Path = QUERIES_DIR) -> dict[str, CannedQuery]:
    return {p.stem: parse(p) for p in sorted(Path(directory).glob("*.rq"))}


# -- name resolution -------------------------------------------------------------------

INDEX_QUERY = """
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?e ?name ?label ?type WHERE {
  ?e rdfs:label|skos:prefLabel|skos:altLabel ?name .
  FILTER(isIRI(?e))
  OPTIONAL { ?e rdfs:label ?label FILTER(LANG(?label) = "zh") }
  OPTIONAL { ?e a ?type FILTER(STRSTARTS(STR(?type), "https://w3id.org/jiceng/ontology#")) }
}
"""


def normalise(name: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name)).strip("“”\"'《》")


def strip_suffix(name: str) -> str:
    for s in SUFFIXES:
        if name.endswith(s) and len(name) - len(s) >= 2:
            return name[: -len(s)]
    return name


def index_version() -> str:
    """Changes whenever the way names are indexed does (a saved index must not outlive it)."""
    parts = (NameIndex, normalise, strip_suffix)
    return repr((SUFFIXES, *(inspect.getsource(p) for p in parts)))


class NameIndex:
    """Labels → entities, built once per graph generation from ``INDEX_QUERY`` rows."""

    def __init__(self, rows: list[tuple[Term | None, ...]]) -> None:
        self.exact: dict[str, set[str]] = {}
        self.stripped: dict[str, set[str]] = {}
        self.info: dict[str, Candidate] = {}
        for e, name, label, typ in rows:
            if not isinstance(e, ox.NamedNode) or name is None:
                continue
            iri = e.value
            old = self.info.get(iri)
            t = typ.value[len(JC) :] if isinstance(typ, ox.NamedNode) else ""
            lab = label.value if label is not None else ""
            if old is None or (not old.label and lab) or (not old.type and t):
                self.info[iri] = Candidate(
                    iri, lab or (old.label if old else ""), t or (old.type if old else "")
                )
            n = normalise(name.value)
            self.exact.setdefault(n, set()).add(iri)
            self.stripped.setdefault(strip_suffix(n), set()).add(iri)

    def _allowed(self, iris: set[str], classes: list[str] | None) -> list[Candidate]:
        cands = [self.info[i] for i in iris]
        if classes is not None:
            cands = [c for c in cands if c.type in classes]
        return sorted(cands, key=lambda c: (c.label, c.iri))

    def to_iri(self, value: str, base: str = RESOURCE_BASE) -> str | None:
        """An IRI, ``res:kind/slug`` or ``kind/slug`` naming a known entity, else None."""
        v = value.strip()
        if v.startswith("res:"):
            v = base + v[4:]
        elif re.fullmatch(r"[a-z-]+/[A-Za-z0-9._~-]+", v):
            v = base + v
        elif v.startswith("<") and v.endswith(">"):
            v = v[1:-1]
        return v if v in self.info else None

    def resolve(self, param: str, value: str, classes: list[str] | None) -> Candidate:
        iri = self.to_iri(value)
        if iri is not None:
            cands = self._allowed({iri}, classes)
            if not cands:
                raise CannedError(404, f"{param}: {value} is not a {'/'.join(classes or [])}")
            return cands[0]
        n = normalise(value)
        for table, key in ((self.exact, n), (self.stripped, strip_suffix(n))):
            cands = self._allowed(table.get(key, set()), classes)
            if len(cands) == 1:
                return cands[0]
            if len(cands) > 1:
                raise Ambiguous(param, value, cands)
        kinds = f" ({'/'.join(classes)})" if classes and len(classes) < 4 else ""
        raise CannedError(404, f"{param}: nothing named {value!r}{kinds} in the graph")


# -- binding ---------------------------------------------------------------------------

_XSD_TYPES = {"integer": "integer", "decimal": "decimal", "date": "date"}


def _literal(p: Param, value: str) -> Term:
    if p.type == "iri":
        try:
            return ox.NamedNode(value)
        except ValueError:
            raise CannedError(400, f"{p.name}: not a valid IRI: {value!r}") from None
    if p.type in ("zh", "en"):
        return ox.Literal(value, language=p.type)
    xsd = _XSD_TYPES.get(p.type) or (p.type[4:] if p.type.startswith("xsd_") else None)
    if xsd:
        if xsd == "integer" and not re.fullmatch(r"[+-]?\d+", value):
            raise CannedError(400, f"{p.name}: not an integer: {value!r}")
        if xsd == "decimal" and not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", value):
            raise CannedError(400, f"{p.name}: not a number: {value!r}")
        if xsd == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise CannedError(400, f"{p.name}: not a date (YYYY-MM-DD): {value!r}")
        return ox.Literal(value, datatype=ox.NamedNode(XSD + xsd))
    return ox.Literal(value)


def bind(cq: CannedQuery, args: dict[str, str], index: NameIndex) -> dict[str, Term]:
    """Check and convert query-string args into variable bindings."""
    unknown = sorted(set(args) - {p.name for p in cq.params} - RESERVED)
    if unknown:
        known = ", ".join(p.name for p in cq.params) or "none"
        raise CannedError(400, f"{cq.name}: unknown parameter {unknown[0]!r} (parameters: {known})")
    out: dict[str, Term] = {}
    for p in cq.params:
        value = args.get(p.name)
        if value is None or value == "":
            value = p.default
        if value is None:
            if p.required:
                raise CannedError(400, f"{cq.name}: missing required parameter {p.name!r}")
            continue
        if p.enum and value not in p.enum:
            # 404 like an unknown name: the value names nothing this query knows.
            raise CannedError(
                404, f"{p.name}: unknown value {value!r} (one of {', '.join(p.enum)})"
            )
        if p.type in ENTITY_KINDS:
            out[p.var] = ox.NamedNode(index.resolve(p.name, value, p.classes).iri)
        else:
            out[p.var] = _literal(p, value)
    return out


def prepare(cq: CannedQuery, args: dict[str, str], index: NameIndex) -> str:
    """The query text with the parameter values bound (and the patterns of the bound
    parameters first)."""
    bindings = bind(cq, args, index)
    patterns = [p.pattern for p in cq.params if p.pattern and p.var in bindings]
    return sparqltext.inject_values(cq.text, bindings, patterns)
