"""Entity resolution: one node per real thing across all documents.

Places linked to the gazetteer are keyed by their official code (so 中原区 in four
articles is one node, and 郑港 / 郑港办事处 / 郑港街道 are one street); other things are
keyed by class and a normalised name.  IRIs are assigned last, in sorted key order, so
the same input always gives the same IRIs.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kg import iri as iris
from kg.gazetteer import Gazetteer, load_gazetteer
from kg.model import Entity, Extraction, Fact, Mention
from kg.recognise import PLACE_CLASSES

Key = tuple[str, ...]


@dataclass
class ResolvedFact:
    subject: str  # IRI
    predicate: str  # ontology local name
    object: str | None  # IRI, or None for literal-only facts
    fact: Fact  # the mention-level fact, for evidence
    doc_id: str


@dataclass
class KnowledgeGraph:
    entities: dict[str, Entity] = field(default_factory=dict)  # IRI -> entity
    facts: list[ResolvedFact] = field(default_factory=list)
    gazetteer_facts: list[tuple[str, str, str]] = field(default_factory=list)  # s, p, o
    statistics: dict[str, dict[str, str]] = field(default_factory=dict)  # IRI -> values
    posts: dict[str, tuple[str, str]] = field(default_factory=dict)  # post IRI -> (unit, role)


_STREET_FORMS = ("街道办事处", "街道办", "办事处", "街道")


def _norm_programme(text: str) -> str:
    return re.sub(r"[\s、，,·“”\"']", "", text)


class _Resolver:
    def __init__(self, extractions: list[Extraction], base: str) -> None:
        self.gaz: Gazetteer = load_gazetteer()
        self.extractions = extractions
        self.base = base
        self.keys: dict[Mention, Key] = {}
        self.cls: dict[Key, Counter] = defaultdict(Counter)
        self.forms: dict[Key, Counter] = defaultdict(Counter)
        self.docs: dict[Key, set[str]] = defaultdict(set)
        self.codes: dict[Key, str] = {}

    # ----------------------------------------------------------------- keys

    def place_key(self, m: Mention, doc_codes: set[str]) -> Key:
        if m.code:
            codes = m.code.split("|")
            if len(codes) > 1:
                # Units the document names that contain some candidates but not all
                # ("新郑市" for 城关乡, not "郑州市", which contains both) decide.
                telling = [a for a in doc_codes
                           if not all(self.gaz.is_within(c, a) for c in codes)]  # fmt: skip
                near = [c for c in codes if any(self.gaz.is_within(c, a) for a in telling)]
                codes = near if len(near) == 1 else codes
            if len(codes) == 1:
                self.codes[("code", codes[0])] = codes[0]
                return ("code", codes[0])
        name = m.canonical or m.text
        if m.label == "Street":
            for form in _STREET_FORMS:
                if name.endswith(form) and len(name) > len(form):
                    name = name[: -len(form)] + "街道"
                    break
        return ("place", m.label, name)

    def key(self, m: Mention, doc_codes: set[str], owner: dict[Mention, Key]) -> Key:
        if m.label in PLACE_CLASSES:
            return self.place_key(m, doc_codes)
        if m.label == "Person":
            return ("person", m.text)
        if m.label == "Programme":
            return ("programme", _norm_programme(m.text))
        if m.label == "Event":
            return ("event", m.text)
        if m.label == "TemporaryPartyBranch":
            unit = owner.get(m)
            return ("tpb", *(unit or ("doc", m.doc_id)), m.text)
        if m.label == "Statistic":
            return ("stat", m.doc_id, f"{m.sentence:04d}", f"{m.start:04d}")
        unit = owner.get(m)
        if unit is not None:  # "龙湖办事处党工委" == "龙湖街道党工委"
            return ("org", m.label, *unit, m.text[self._owner_len(m) :])
        return ("org", m.label, m.text)

    def _owner_len(self, m: Mention) -> int:
        return int(self._owner_lengths.get(m, 0))

    # ----------------------------------------------------------------- run

    def run(self) -> KnowledgeGraph:
        kg = KnowledgeGraph()
        self._owner_lengths: dict[Mention, int] = {}
        resolved: list[tuple[Fact, str]] = []
        for ex in self.extractions:
            doc_id = ex.document.doc_id
            doc_codes = {c for m in ex.mentions if m.code and "|" not in m.code
                         for c in [m.code]}  # fmt: skip
            # places first: organisations and branches are keyed by their owner place
            for m in ex.mentions:
                if m.label in PLACE_CLASSES:
                    self._register(m, self.place_key(m, doc_codes), doc_id)
            owner: dict[Mention, Key] = {}
            for f in ex.facts:
                if f.predicate == "establishedBy" and isinstance(f.object, Mention):
                    owner.setdefault(f.subject, self.keys.get(f.object) or
                                     self.key(f.object, doc_codes, {}))  # fmt: skip
                if f.predicate == "locatedIn" and isinstance(f.object, Mention):
                    if f.object.start == f.subject.start:
                        owner.setdefault(f.subject, self.keys[f.object])
                        self._owner_lengths[f.subject] = f.object.end - f.object.start
            for m in ex.mentions:
                if m not in self.keys:
                    self._register(m, self.key(m, doc_codes, owner), doc_id)
            for f in ex.facts:
                for m in (f.subject, f.object):
                    if isinstance(m, Mention) and m not in self.keys:
                        self._register(m, self.key(m, doc_codes, owner), doc_id)
                resolved.append((f, doc_id))
        self._add_gazetteer_ancestors()
        key_iri = self._assign_iris(kg)
        for f, doc_id in resolved:
            s = key_iri[self.keys[f.subject]]
            if f.predicate in ("secretaryOf", "holds"):
                o = key_iri[self.keys[f.object]]
                if f.predicate == "holds":
                    o = self._post(kg, o, f.role or "书记")
                    kg.entities[o].documents.add(doc_id)
                kg.facts.append(ResolvedFact(s, f.predicate, o, f, doc_id))
            elif f.predicate == "about":
                values = dict(f.extra)
                kg.statistics[s] = values
                # "组建党员突击队4200多支", not just "4200多支"
                kg.entities[s].label = values["measure"] + f.subject.text
                o = key_iri[self.keys[f.object]] if isinstance(f.object, Mention) else None
                kg.facts.append(ResolvedFact(s, "about", o, f, doc_id))
            elif isinstance(f.object, Mention):
                o = key_iri[self.keys[f.object]]
                if s != o:
                    kg.facts.append(ResolvedFact(s, f.predicate, o, f, doc_id))
        for key, code in sorted(self.codes.items()):
            div = self.gaz.divisions[code]
            if div.parent and div.parent in self.gaz.divisions:
                kg.gazetteer_facts.append((key_iri[key], "partOf", key_iri[("code", div.parent)]))
        return kg

    def _register(self, m: Mention, key: Key, doc_id: str) -> None:
        self.keys[m] = key
        self.cls[key][m.label] += 1
        self.forms[key][m.text] += 1
        if m.label != "Statistic":
            self.docs[key].add(doc_id)

    def _add_gazetteer_ancestors(self) -> None:
        for code in list(self.codes.values()):
            for div in self.gaz.ancestors(code):
                key = ("code", div.code)
                self.codes[key] = div.code
                self.cls[key][div.cls] += 0  # known class, but not mentioned

    def _label(self, key: Key) -> tuple[str, str, set[str]]:
        """(label, class, alt labels) of one entity."""
        forms = self.forms.get(key, Counter())
        if key[0] == "code":
            div = self.gaz.divisions[key[1]]
            label, cls = div.name, div.cls
            alts = set(forms) | ({div.official} if div.official != div.name else set())
        else:
            cls = self.cls[key].most_common(1)[0][0]
            label = key[2] if key[0] == "place" else max(forms, key=lambda f: (forms[f], len(f), f))
            if key[0] == "stat":
                label = next(iter(forms))
            alts = set(forms)
        if cls == "Compound" and label.endswith("小区") and len(label) > 4:
            alts.add(label[:-2])  # "阳光花园小区" is also "阳光花园"
        alts.discard(label)
        return label, cls, alts

    def _assign_iris(self, kg: KnowledgeGraph) -> dict[Key, str]:
        keys = sorted(set(self.cls) | {("code", c) for c in self.codes.values()})
        wanted: dict[Key, tuple[str, str, str, set[str]]] = {}
        for key in keys:
            label, cls, alts = self._label(key)
            if key[0] == "stat":
                slug = f"{key[1]}-{key[2]}-{key[3]}"
            else:
                slug = iris.slug(label, cls)
            wanted[key] = (cls, slug, label, alts)
        taken = Counter((cls, slug) for cls, slug, _, _ in wanted.values())
        out: dict[Key, str] = {}
        for key in keys:
            cls, slug, label, alts = wanted[key]
            if taken[(cls, slug)] > 1:  # collision-safe: the code, else a hash of the key
                slug = f"{slug}-{key[1] if key[0] == 'code' else iris.short_hash(*key)}"
            iri = iris.entity_iri(self.base, cls, slug)
            out[key] = iri
            kg.entities[iri] = Entity(
                iri=iri, label=label, cls=cls, alt_labels=alts,
                code=self.codes.get(key), documents=set(self.docs.get(key, ())),
            )  # fmt: skip
        return out

    def _post(self, kg: KnowledgeGraph, unit_iri: str, role: str) -> str:
        unit = kg.entities[unit_iri]
        slug = unit_iri.rsplit("/", 1)[1] + "-" + _role_slug(role)
        post_iri = iris.entity_iri(self.base, "Post", slug)
        if post_iri not in kg.entities:
            kg.entities[post_iri] = Entity(post_iri, unit.label + role, "Post")
            kg.posts[post_iri] = (unit_iri, role)
        return post_iri


@functools.lru_cache(maxsize=256)  # one call per "holds" fact, and a handful of roles
def _role_slug(role: str) -> str:
    return iris.slug(role)


def resolve(extractions: list[Extraction], base: str = iris.RESOURCE) -> KnowledgeGraph:
    return _Resolver(extractions, base).run()
