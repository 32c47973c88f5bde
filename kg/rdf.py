"""The resolved graph as RDF: entities, documents, sentences and reified evidence.

The shape is the contract in ``ontology/README.md``.  Output is deterministic: no
blank nodes, IRIs derived from content, and serialisations sorted (``kg/formats.py``).

Every triple also belongs to one or more named graphs, written by TriG and N-Quads:
each article's graph ``res:document/{stem}`` holds what was read from that article (the
document, its sentences, its facts with their evidence, and the description of every
entity it names or states a fact about), so that a store can replace one article's graph
and keep the rest; the gazetteer's codes and parents are in
``res:dataset/zhengzhou-divisions`` and the dataset header in ``res:dataset/jiceng-kg``.
Triple formats write the union.

Terms are N-Triples strings (kg/formats.py), made here directly rather than through rdflib
terms, which cost more to build, hash and sort than everything else in a build's output.

The graph is made in two parts, so that a build can make most of it where each document
already is (kg/pipeline.py's worker processes):

* ``plan`` (needs the whole resolution): the *shared* part — the dataset header, the
  gazetteer graph, and the triples of every subject that more than one graph holds — and,
  for each document, a ``DocumentPart``: the little the document's own subjects need from
  the resolution;
* ``document_graph`` (needs one document and its part): the triples of the subjects only
  that document's graph holds: the document, its sentences, the statements with their
  evidence, and the entities (such as statistics) that no other graph names.

No subject is in both, so each subject's triples are all in one place.  ``to_graph`` puts
the two together in one process.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from rdflib import RDF, RDFS, XSD, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, ORG, OWL, PROV, SKOS

from kg import formats
from kg import iri as iris
from kg.formats import NtTriple, canonical_decimal, nt_integer, nt_iri, nt_literal, value_of
from kg.model import Document, Entity, Fact, Mention, Sentence
from kg.resolve import KnowledgeGraph, ResolvedFact

ONTOLOGY_IRI = "https://w3id.org/jiceng/ontology"
ONTOLOGY_TTL = Path(__file__).resolve().parents[1] / "ontology" / "jiceng.ttl"
DATASET = "dataset/jiceng-kg"
GAZETTEER = "dataset/zhengzhou-divisions"
PINYIN = "zh-Latn-pinyin"
PREFIXES = {  # for Turtle, TriG, RDF/XML and the JSON-LD context (only used ones are written)
    "jc": iris.ONTOLOGY, "rdf": str(RDF), "rdfs": str(RDFS), "xsd": str(XSD), "owl": str(OWL),
    "skos": str(SKOS), "prov": str(PROV), "dcterms": str(DCTERMS), "org": str(ORG),
    "foaf": str(FOAF), "schema": "https://schema.org/", "vann": "http://purl.org/vocab/vann/",
}  # fmt: skip


@functools.cache
def jc(name: str) -> str:
    """A term of the jiceng ontology."""
    return nt_iri(iris.ONTOLOGY + name)


TYPE = formats.TYPE
LABEL, PREF_LABEL, ALT_LABEL = f"<{RDFS.label}>", f"<{SKOS.prefLabel}>", f"<{SKOS.altLabel}>"
TITLE, IDENTIFIER = f"<{DCTERMS.title}>", f"<{DCTERMS.identifier}>"
CREATOR, DATE, SOURCE = f"<{DCTERMS.creator}>", f"<{DCTERMS.date}>", f"<{DCTERMS.source}>"
DERIVED_FROM, PROV_ENTITY = f"<{PROV.wasDerivedFrom}>", f"<{PROV.Entity}>"
STATEMENT, SUBJECT = f"<{RDF.Statement}>", f"<{RDF.subject}>"
PREDICATE, OBJECT = f"<{RDF.predicate}>", f"<{RDF.object}>"


def _zh(text: str) -> str:
    return nt_literal(text, "zh")


@functools.lru_cache(maxsize=1 << 12)  # confidences and quantities: few distinct values
def _decimal(value: str) -> str:
    return formats.nt_term(canonical_decimal(value))


@functools.lru_cache(maxsize=1 << 16)
def document_iri(base: str, doc_id: str) -> str:
    return nt_iri(f"{base}document/{doc_id}")  # checked: a file name can hold anything


def _sentence_iri(base: str, doc_id: str, index: int) -> str:
    return f"<{base}sentence/{doc_id}-{index:04d}>"  # as safe as the document's IRI


class DumpGraph:
    """The union graph (what triple formats write), plus the triples of each named graph.

    Plain sets of triples of N-Triples terms (kg/formats.py), not an rdflib Graph: the
    writers only iterate it, and a Graph's indexes cost more than everything else in
    building it.  rdflib terms may be added too; the writers convert them.
    """

    def __init__(self, base: str = iris.RESOURCE) -> None:
        self.base = base
        self.triples: set[NtTriple] = set()
        self.named: dict[str, set[NtTriple]] = defaultdict(set)  # graph (N-Triples IRI)
        self.prefixes: dict[str, str] = dict(PREFIXES) | {"res": base}

    def add(self, triple: NtTriple, graph: str | None = None) -> None:
        self.triples.add(triple)
        if graph is not None:
            self.named[graph].add(triple)

    def update(self, triples: Collection[NtTriple], graph: str | None = None) -> None:
        self.triples.update(triples)
        if graph is not None:
            self.named[graph].update(triples)

    def bind(self, prefix: str, namespace: str) -> None:
        self.prefixes[prefix] = str(namespace)

    def namespaces(self) -> Iterator[tuple[str, URIRef]]:
        return ((k, URIRef(v)) for k, v in self.prefixes.items())

    def __iter__(self) -> Iterator[NtTriple]:
        return iter(self.triples)

    def __len__(self) -> int:
        return len(self.triples)

    def __contains__(self, triple: NtTriple) -> bool:
        return triple in self.triples


# --------------------------------------------------------------------------- the two parts


class Evidence(NamedTuple):
    """A fact's triple, to be reified with the sentence it was read from (a tuple: cheap to
    send to the process holding the document)."""

    s: str
    p: str
    o: str
    rule: str
    confidence: float
    sentence: int  # Sentence.index
    start: int  # span of the fact in the cleaned sentence text
    end: int


@dataclass
class DocumentPart:
    """What the process holding a document needs, besides it, to write its own subjects."""

    creators: dict[str, str] = field(default_factory=dict)  # byline name -> person IRI term
    evidence: list[Evidence] = field(default_factory=list)  # the document's facts
    triples: list[NtTriple] = field(default_factory=list)  # facts about its own entities
    entities: list[Entity] = field(default_factory=list)  # entities no other graph holds


def plan(
    kg: KnowledgeGraph, docs: Mapping[str, Document], base: str = iris.RESOURCE
) -> tuple[DumpGraph, dict[str, DocumentPart]]:
    """The shared part of the graph, and each document's part (``docs`` need no text)."""
    base = check_base(base)
    shared = DumpGraph(base)
    dataset, gazetteer = nt_iri(base + DATASET), nt_iri(base + GAZETTEER)
    parts = {doc_id: DocumentPart() for doc_id in docs}
    graph_doc = {document_iri(base, doc_id): doc_id for doc_id in docs}
    _dataset_header(shared, dataset, gazetteer)

    people: dict[str, dict[str, str]] = defaultdict(dict)  # doc -> person label -> IRI
    for iri, e in kg.entities.items():
        if e.cls == "Person":
            for doc_id in e.documents:
                people[doc_id][e.label] = iri
    for doc_id, doc in docs.items():
        named = people.get(doc_id, {})
        parts[doc_id].creators = {n: f"<{named[n]}>" for n in doc.bylines if n in named}

    # Facts first: an entity is described in every graph that states a fact about it.
    facts: list[tuple[NtTriple, str]] = []  # (triple, graph); routed once homes are known
    cited: dict[str, set[str]] = defaultdict(set)  # subject or object -> graphs citing it

    def fact_triple(t: NtTriple, graph: str) -> None:
        facts.append((t, graph))
        cited[t[0]].add(graph)
        if t[2][0] == "<":
            cited[t[2]].add(graph)

    for rf in kg.facts:
        graph = document_iri(base, rf.doc_id)
        triples, evidence = _fact(rf, kg, graph)
        for t in triples:
            fact_triple(t, graph)
        parts[rf.doc_id].evidence += evidence
    for s, p, o in kg.gazetteer_facts:
        t = (f"<{s}>", jc(p), f"<{o}>")
        fact_triple(t, gazetteer)
        shared.update(_statement(base, *t, "gazetteer", 1.0), gazetteer)

    home: dict[str, str] = {}  # entity -> the one document whose graph alone holds it
    for iri, e in sorted(kg.entities.items()):
        node = nt_iri(iri)
        if e.code:
            t = (node, jc("adminCode"), nt_literal(e.code))
            fact_triple(t, gazetteer)
            shared.update(_statement(base, *t, "gazetteer", 1.0), gazetteer)
        graphs = {document_iri(base, d) for d in e.documents} | cited[node]
        if len(graphs) == 1 and (doc_id := graph_doc.get(next(iter(graphs)))) is not None:
            home[node] = doc_id
            parts[doc_id].entities.append(e)
            continue
        description = _describe(e)
        for graph in graphs or {dataset}:  # the fallback is never expected
            shared.update(description, graph)
        for doc_id in e.documents:
            graph = document_iri(base, doc_id)
            shared.add((node, jc("mentionedIn"), graph), graph)
    for t, graph in facts:
        if t[0] in home:
            parts[home[t[0]]].triples.append(t)
        else:
            shared.add(t, graph)
    return shared, parts


def document_graph(doc: Document, part: DocumentPart, base: str = iris.RESOURCE) -> set[NtTriple]:
    """The triples of the subjects only this document's graph holds (all in that graph)."""
    out: set[NtTriple] = set(_document(doc, part.creators, base))
    for ev in part.evidence:
        where = (doc.doc_id, doc.sentences[ev.sentence], ev.start, ev.end)
        out.update(_statement(base, ev.s, ev.p, ev.o, ev.rule, ev.confidence, where))
    out.update(part.triples)
    graph = document_iri(base, doc.doc_id)
    for e in part.entities:
        out.update(_describe(e))
        if e.documents:  # only this one
            out.add((f"<{e.iri}>", jc("mentionedIn"), graph))
    return out


def to_graph(
    kg: KnowledgeGraph, docs: Mapping[str, Document], base: str = iris.RESOURCE
) -> DumpGraph:
    """The whole graph in this process: the shared part and every document's part."""
    graph, parts = plan(kg, docs, base)
    for doc_id, part in parts.items():
        graph.update(document_graph(docs[doc_id], part, base), document_iri(base, doc_id))
    return graph


# --------------------------------------------------------------------------- triples


def _dataset_header(g: DumpGraph, dataset: str, gazetteer: str) -> None:
    # Typed owl:Ontology so that OWL tools (Protégé, OWLAPI) follow the owl:imports.
    g.add((dataset, TYPE, f"<{OWL.Ontology}>"), dataset)
    g.add((dataset, TYPE, PROV_ENTITY), dataset)
    g.add((dataset, f"<{OWL.imports}>", nt_iri(ONTOLOGY_IRI)), dataset)
    # the gazetteer is described in its own graph, which travels with it
    g.add((gazetteer, TYPE, PROV_ENTITY), gazetteer)
    label = nt_literal("Zhengzhou administrative divisions (NBS 2023)", "en")
    g.add((gazetteer, LABEL, label), gazetteer)
    source = nt_iri("https://github.com/modood/Administrative-divisions-of-China")
    g.add((gazetteer, SOURCE, source), gazetteer)


def _document(doc: Document, creators: Mapping[str, str], base: str) -> list[NtTriple]:
    """The document node and its sentences."""
    d = document_iri(base, doc.doc_id)
    out = [
        (d, TYPE, jc("Document")),
        (d, LABEL, _zh(doc.title or doc.doc_id)),
        (d, IDENTIFIER, nt_literal(doc.doc_id)),
        (d, jc("sourceFile"), nt_literal(Path(doc.path).name)),  # not the machine's layout
        (d, jc("duplicateParagraphs"), nt_integer(doc.duplicates_dropped)),
        (d, jc("sentenceCount"), nt_integer(len(doc.sentences))),
    ]
    if doc.title:
        out.append((d, TITLE, _zh(doc.title)))
    for name in doc.bylines:
        out.append((d, jc("byline"), _zh(name)))
        if name in creators:
            out.append((d, CREATOR, creators[name]))
    if doc.date:
        dtype = XSD.date if len(doc.date) == 10 else XSD.gYear
        out.append((d, DATE, formats.nt_term(Literal(doc.date, datatype=dtype))))
    kind, text, in_doc = jc("Sentence"), jc("text"), jc("inDocument")
    index, start, end = jc("index"), jc("startOffset"), jc("endOffset")
    for s in doc.sentences:
        node = _sentence_iri(base, doc.doc_id, s.index)
        out += [
            (node, TYPE, kind),
            (node, text, _zh(s.text)),
            (node, in_doc, d),
            (node, index, nt_integer(s.index)),
            (node, start, nt_integer(s.start)),
            (node, end, nt_integer(s.end)),
        ]
    return out


def _fact(rf: ResolvedFact, kg: KnowledgeGraph, d: str) -> tuple[list[NtTriple], list[Evidence]]:
    """The triples a resolved fact asserts, and those of them to reify with evidence."""
    s, f = f"<{rf.subject}>", rf.fact
    start, end = _evidence_span(f)

    def evidence(s: str, p: str, o: str) -> Evidence:
        return Evidence(s, p, o, f.rule, f.confidence, f.subject.sentence, start, end)

    if rf.predicate == "about":
        values = kg.statistics[rf.subject]
        qty = _decimal(values["quantity"])
        triples = [
            (s, TYPE, jc("Statistic")),
            (s, jc("quantity"), qty),
            (s, jc("unit"), _zh(values["unit"])),
            (s, jc("measure"), _zh(values["measure"])),
            (s, jc("mentionedIn"), d),
        ]
        if values.get("qualifier"):
            triples.append((s, jc("qualifier"), _zh(values["qualifier"])))
        reified = [evidence(s, jc("quantity"), qty)]
        if rf.object is not None:
            about = (s, jc("about"), f"<{rf.object}>")
            triples.append(about)
            reified.append(evidence(*about))
        return triples, reified
    fact = (s, jc(rf.predicate), f"<{rf.object}>")
    triples, reified = [fact], [evidence(*fact)]
    if rf.predicate == "holds":  # the post's unit and role are read from the same sentence
        unit, role = kg.posts[rf.object]
        post_in = (fact[2], jc("postIn"), f"<{unit}>")
        triples += [(fact[2], jc("role"), _zh(role)), post_in]
        reified.append(evidence(*post_in))
    return triples, reified


def _statement(
    base: str, s: str, p: str, o: str, rule: str, confidence: float,
    where: tuple[str, Sentence, int, int] | None = None,
) -> list[NtTriple]:  # fmt: skip
    """Reify one asserted triple: from the gazetteer, or ``where`` (doc, sentence, span)."""
    key = [value_of(s), value_of(p), value_of(o), rule, where[0] if where else ""]
    if where is not None:
        key += [str(where[1].index), str(where[2])]
    node = f"<{base}statement/{iris.short_hash(*key, n=16)}>"
    graph = nt_iri(base + GAZETTEER) if where is None else document_iri(base, where[0])
    out = [
        (node, TYPE, STATEMENT),
        (node, SUBJECT, s),
        (node, PREDICATE, p),
        (node, OBJECT, o),
        (node, jc("rule"), nt_literal(rule)),
        (node, jc("confidence"), _decimal(f"{confidence:.2f}")),
        (node, DERIVED_FROM, graph),
    ]
    if where is not None:
        doc_id, sent, start, end = where
        raw_start, raw_end = sent.raw_span(start, end)
        out += [
            (node, jc("sentence"), _sentence_iri(base, doc_id, sent.index)),
            (node, jc("evidence"), _zh(sent.text)),
            (node, jc("startOffset"), nt_integer(raw_start)),
            (node, jc("endOffset"), nt_integer(raw_end)),
        ]
    return out


def _describe(e: Entity) -> list[NtTriple]:
    """What every graph that holds an entity says about it: class and names."""
    node, label = nt_iri(e.iri), _zh(e.label)
    out = [
        (node, TYPE, jc(e.cls)),
        (node, LABEL, label),
        (node, LABEL, nt_literal(_pinyin_label(e.label, e.cls), PINYIN)),
        (node, PREF_LABEL, label),
    ]
    out += [(node, ALT_LABEL, _zh(alt)) for alt in e.alt_labels]
    return out


def _evidence_span(fact: Fact) -> tuple[int, int]:
    """The smallest span of the sentence covering both ends of the fact."""
    spans = [(fact.subject.start, fact.subject.end)]
    if isinstance(fact.object, Mention) and fact.object.sentence == fact.subject.sentence:
        if fact.object.doc_id == fact.subject.doc_id:
            spans.append((fact.object.start, fact.object.end))
    return min(s for s, _ in spans), max(e for _, e in spans)


@functools.lru_cache(maxsize=1 << 16)  # an entity is described in many graphs
def _pinyin_label(label: str, cls: str) -> str:
    if cls == "Person":
        return iris.slug(label, cls).replace("-", " ").title()
    return iris.pinyin(label)


def check_base(base: str) -> str:
    """A resource base must be an absolute IRI ending in ``/`` or ``#``."""
    formats.check_iri(base)
    if not base.endswith(("/", "#")):
        raise ValueError(f"resource base must end with / or #: {base!r}")
    return base


# --------------------------------------------------------------------------- writing


def layout(fmt: str, base: str = iris.RESOURCE) -> formats.Layout:
    """The writer of one format, for graphs made here (every property has a prefix)."""
    if fmt == "turtle":
        return formats.Turtle(PREFIXES)
    if fmt == "nt":
        return formats.NTriples()
    if fmt == "xml":
        return formats.RdfXml(PREFIXES)
    if fmt == "json-ld":
        return formats.JsonLd(jsonld_context(base))
    if fmt == "trig":
        return formats.TriG(PREFIXES)
    if fmt == "nquads":
        return formats.NQuads()
    raise ValueError(f"unknown RDF format {fmt!r}")


def serialise(graph: Graph | DumpGraph, fmt: str) -> bytes:
    """Deterministic bytes for one of: turtle, nt, json-ld, xml, trig, nquads.

    TriG and N-Quads write the named graphs of a ``DumpGraph``; any other graph is
    written as the default graph.
    """
    if fmt == "turtle":
        return formats.turtle(graph, PREFIXES)
    if fmt == "nt":
        return formats.ntriples(graph)
    if fmt == "xml":
        return formats.rdfxml(graph, PREFIXES)
    if fmt == "json-ld":
        base = getattr(graph, "base", None) or dict(graph.namespaces()).get("res")
        return formats.jsonld(graph, jsonld_context(str(base or iris.RESOURCE)))
    if fmt in ("trig", "nquads"):
        named = getattr(graph, "named", None) or {None: set(graph)}
        return formats.trig(named, PREFIXES) if fmt == "trig" else formats.nquads(named)
    raise ValueError(f"unknown RDF format {fmt!r}")


# --------------------------------------------------------------------------- JSON-LD context

# Terms outside jc: that the dumps and the ontology use; jc: terms come from the ontology.
_LANG = {"@container": "@language"}
_REF = {"@type": "@id"}
_OTHER_TERMS: dict[str, tuple[str, dict[str, str]]] = {
    "label": ("rdfs:label", _LANG), "comment": ("rdfs:comment", _LANG),
    "prefLabel": ("skos:prefLabel", _LANG), "altLabel": ("skos:altLabel", _LANG),
    "title": ("dcterms:title", _LANG), "description": ("dcterms:description", _LANG),
    "date": ("dcterms:date", {}), "identifier": ("dcterms:identifier", {}),
    "creator": ("dcterms:creator", _REF), "source": ("dcterms:source", _REF),
    "wasDerivedFrom": ("prov:wasDerivedFrom", _REF), "imports": ("owl:imports", _REF),
    "subject": ("rdf:subject", _REF), "predicate": ("rdf:predicate", _REF),
    "object": ("rdf:object", {}), "isDefinedBy": ("rdfs:isDefinedBy", _REF),
    "subClassOf": ("rdfs:subClassOf", _REF), "subPropertyOf": ("rdfs:subPropertyOf", _REF),
    "domain": ("rdfs:domain", _REF), "range": ("rdfs:range", _REF),
}  # fmt: skip


@functools.cache
def _jc_terms() -> tuple[tuple[str, dict[str, str]], ...]:
    """(term, definition) for every jc: class and property declared in the ontology."""
    onto = Graph().parse(ONTOLOGY_TTL, format="turtle")
    out: dict[str, dict[str, str]] = {}
    kinds = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty)
    for kind in kinds:
        for node in onto.subjects(RDF.type, kind):
            if not (isinstance(node, URIRef) and node.startswith(iris.ONTOLOGY)):
                continue
            local = node[len(iris.ONTOLOGY) :]
            rng = onto.value(node, RDFS.range)
            if kind == OWL.ObjectProperty:
                out[local] = {"@id": f"jc:{local}", **_REF}
            elif kind == OWL.DatatypeProperty and rng == RDF.langString:
                out[local] = {"@id": f"jc:{local}", **_LANG}
            elif kind == OWL.DatatypeProperty and rng not in (None, XSD.string):
                out[local] = {"@id": f"jc:{local}", "@type": f"xsd:{rng[len(str(XSD)) :]}"}
            else:
                out[local] = {"@id": f"jc:{local}"}
    return tuple(sorted(out.items()))


def jsonld_context(base: str = iris.RESOURCE) -> dict[str, object]:
    """The compact ``@context`` for the jc: vocabulary (also ``ontology/context.jsonld``).

    ``res`` is the resource base, so ``res:street/…`` reads as the dump was built.
    No ``@vocab`` and no default ``@language``: what is not a term stays a full or
    compact IRI, and a plain string is an ``xsd:string``.
    """
    ctx: dict[str, object] = dict(PREFIXES) | {"res": base}
    for term, (iri, extra) in _OTHER_TERMS.items():
        ctx[term] = {"@id": iri, **extra} if extra else iri
    for term, definition in _jc_terms():
        if term in ctx:
            raise ValueError(f"jc:{term} clashes with the JSON-LD term {term!r}")
        ctx[term] = definition if len(definition) > 1 else definition["@id"]
    return ctx
