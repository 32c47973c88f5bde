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
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, ORG, OWL, PROV, SKOS

from kg import formats
from kg import iri as iris
from kg.formats import Triple, canonical_decimal
from kg.model import Document, Fact, Mention
from kg.resolve import KnowledgeGraph, ResolvedFact

JC = Namespace(iris.ONTOLOGY)
ONTOLOGY_IRI = URIRef("https://w3id.org/jiceng/ontology")
ONTOLOGY_TTL = Path(__file__).resolve().parents[1] / "ontology" / "jiceng.ttl"
DATASET = "dataset/jiceng-kg"
GAZETTEER = "dataset/zhengzhou-divisions"
PINYIN = "zh-Latn-pinyin"
PREFIXES = {  # for Turtle, TriG, RDF/XML and the JSON-LD context (only used ones are written)
    "jc": iris.ONTOLOGY, "rdf": str(RDF), "rdfs": str(RDFS), "xsd": str(XSD), "owl": str(OWL),
    "skos": str(SKOS), "prov": str(PROV), "dcterms": str(DCTERMS), "org": str(ORG),
    "foaf": str(FOAF), "schema": "https://schema.org/", "vann": "http://purl.org/vocab/vann/",
}  # fmt: skip


def _zh(text: str) -> Literal:
    return Literal(text, lang="zh")


class DumpGraph:
    """The union graph (what triple formats write), plus the triples of each named graph.

    A plain set of rdflib terms, not an rdflib Graph: the writers in kg/formats.py only
    iterate it, and a Graph's indexes cost more than everything else in building it.
    """

    def __init__(self, base: str = iris.RESOURCE) -> None:
        self.base = base
        self.triples: set[Triple] = set()
        self.named: dict[URIRef, set[Triple]] = defaultdict(set)
        self.prefixes: dict[str, str] = {}

    def add(self, triple: Triple) -> None:
        self.triples.add(triple)

    def bind(self, prefix: str, namespace: str) -> None:
        self.prefixes[prefix] = str(namespace)

    def namespaces(self) -> Iterator[tuple[str, URIRef]]:
        return ((k, URIRef(v)) for k, v in self.prefixes.items())

    def __iter__(self) -> Iterator[Triple]:
        return iter(self.triples)

    def __len__(self) -> int:
        return len(self.triples)

    def __contains__(self, triple: Triple) -> bool:
        return triple in self.triples


class _Writer:
    def __init__(self, kg: KnowledgeGraph, docs: dict[str, Document], base: str) -> None:
        self.kg, self.docs, self.base = kg, docs, base
        self.g = DumpGraph(base)
        for prefix, ns in PREFIXES.items():
            self.g.bind(prefix, ns)
        self.g.bind("res", Namespace(base))
        self.dataset, self.gazetteer = self.res(DATASET), self.res(GAZETTEER)
        self.cited: dict[URIRef, set[URIRef]] = defaultdict(set)  # entity -> graphs citing it

    def res(self, path: str) -> URIRef:
        return URIRef(self.base + path)

    def doc(self, doc_id: str) -> URIRef:
        return self.res(f"document/{doc_id}")

    def add(self, s, p, o, graph: URIRef) -> None:
        self.g.add((s, p, o))
        self.g.named[graph].add((s, p, o))

    def fact_triple(self, s, p, o, graph: URIRef) -> None:
        """A fact triple: its entities must be described in the same graph."""
        self.add(s, p, o, graph)
        for node in (s, o):
            if isinstance(node, URIRef):
                self.cited[node].add(graph)

    # ----------------------------------------------------------------- nodes

    def dataset_header(self) -> None:
        # Typed owl:Ontology so that OWL tools (Protégé, OWLAPI) follow the owl:imports.
        self.add(self.dataset, RDF.type, OWL.Ontology, self.dataset)
        self.add(self.dataset, RDF.type, PROV.Entity, self.dataset)
        self.add(self.dataset, OWL.imports, ONTOLOGY_IRI, self.dataset)
        gaz = self.gazetteer  # described in its own graph, which travels with it
        self.add(gaz, RDF.type, PROV.Entity, gaz)
        label = Literal("Zhengzhou administrative divisions (NBS 2023)", lang="en")
        self.add(gaz, RDFS.label, label, gaz)
        source = URIRef("https://github.com/modood/Administrative-divisions-of-China")
        self.add(gaz, DCTERMS.source, source, gaz)

    def documents(self) -> None:
        for doc_id, doc in sorted(self.docs.items()):
            d = self.doc(doc_id)
            self.add(d, RDF.type, JC.Document, d)
            self.add(d, RDFS.label, _zh(doc.title or doc_id), d)
            if doc.title:
                self.add(d, DCTERMS.title, _zh(doc.title), d)
            self.add(d, DCTERMS.identifier, Literal(doc_id), d)
            self.add(d, JC.sourceFile, Literal(Path(doc.path).name), d)  # not the machine's layout
            self.add(d, JC.duplicateParagraphs, Literal(doc.duplicates_dropped), d)
            self.add(d, JC.sentenceCount, Literal(len(doc.sentences)), d)
            people = {e.label: iri for iri, e in self.kg.entities.items()
                      if e.cls == "Person" and doc_id in e.documents}  # fmt: skip
            for name in doc.bylines:
                self.add(d, JC.byline, _zh(name), d)
                if name in people:
                    self.add(d, DCTERMS.creator, URIRef(people[name]), d)
            if doc.date:
                dtype = XSD.date if len(doc.date) == 10 else XSD.gYear
                self.add(d, DCTERMS.date, Literal(doc.date, datatype=dtype), d)
            for s in doc.sentences:
                node = self.sentence(doc_id, s.index)
                self.add(node, RDF.type, JC.Sentence, d)
                self.add(node, JC.text, _zh(s.text), d)
                self.add(node, JC.inDocument, d, d)
                self.add(node, JC["index"], Literal(s.index), d)
                self.add(node, JC.startOffset, Literal(s.start), d)
                self.add(node, JC.endOffset, Literal(s.end), d)

    def sentence(self, doc_id: str, index: int) -> URIRef:
        return self.res(f"sentence/{doc_id}-{index:04d}")

    def entities(self) -> None:
        """Describe each entity in every graph that names it or states a fact about it."""
        for iri, e in sorted(self.kg.entities.items()):
            node = URIRef(iri)
            if e.code:
                code = Literal(e.code)
                self.fact_triple(node, JC.adminCode, code, self.gazetteer)
                self.statement(node, JC.adminCode, code, None, None, "gazetteer")
            graphs = {self.doc(d) for d in e.documents} | self.cited[node]
            for graph in sorted(graphs or {self.dataset}):  # the fallback is never expected
                self.add(node, RDF.type, JC[e.cls], graph)
                self.add(node, RDFS.label, _zh(e.label), graph)
                pinyin = Literal(_pinyin_label(e.label, e.cls), lang=PINYIN)
                self.add(node, RDFS.label, pinyin, graph)
                self.add(node, SKOS.prefLabel, _zh(e.label), graph)
                for alt in sorted(e.alt_labels):
                    self.add(node, SKOS.altLabel, _zh(alt), graph)
            for doc_id in sorted(e.documents):
                self.add(node, JC.mentionedIn, self.doc(doc_id), self.doc(doc_id))

    # ----------------------------------------------------------------- facts

    def statement(
        self, s, p, o, fact: Fact | None, doc_id: str | None, rule: str, conf: float = 1.0
    ) -> None:
        """Reify one asserted triple with its evidence."""
        key = [str(s), str(p), str(o), rule, doc_id or ""]
        evidence = None
        if fact is not None and doc_id is not None:
            sent = self.docs[doc_id].sentences[fact.subject.sentence]
            start, end = _evidence_span(fact)
            raw_start, raw_end = sent.raw_span(start, end)
            evidence = (sent, raw_start, raw_end)
            key += [str(sent.index), str(start)]
        node = self.res(f"statement/{iris.short_hash(*key, n=16)}")
        graph = self.gazetteer if evidence is None else self.doc(doc_id)  # type: ignore[arg-type]
        self.add(node, RDF.type, RDF.Statement, graph)
        self.add(node, RDF.subject, s, graph)
        self.add(node, RDF.predicate, p, graph)
        self.add(node, RDF.object, o, graph)
        self.add(node, JC.rule, Literal(rule), graph)
        self.add(node, JC.confidence, canonical_decimal(f"{conf:.2f}"), graph)
        self.add(node, PROV.wasDerivedFrom, graph, graph)
        if evidence is None:
            return
        sent, raw_start, raw_end = evidence
        self.add(node, JC.sentence, self.sentence(doc_id, sent.index), graph)
        self.add(node, JC.evidence, _zh(sent.text), graph)
        self.add(node, JC.startOffset, Literal(raw_start), graph)
        self.add(node, JC.endOffset, Literal(raw_end), graph)

    def facts(self) -> None:
        for rf in self.kg.facts:
            self.fact(rf)
        for s, p, o in self.kg.gazetteer_facts:
            self.fact_triple(URIRef(s), JC[p], URIRef(o), self.gazetteer)
            self.statement(URIRef(s), JC[p], URIRef(o), None, None, "gazetteer")

    def fact(self, rf: ResolvedFact) -> None:
        s, f, d = URIRef(rf.subject), rf.fact, self.doc(rf.doc_id)
        if rf.predicate == "about":
            values = self.kg.statistics[rf.subject]
            self.fact_triple(s, RDF.type, JC.Statistic, d)
            qty = canonical_decimal(values["quantity"])
            self.fact_triple(s, JC.quantity, qty, d)
            self.fact_triple(s, JC.unit, _zh(values["unit"]), d)
            self.fact_triple(s, JC.measure, _zh(values["measure"]), d)
            if values.get("qualifier"):
                self.fact_triple(s, JC.qualifier, _zh(values["qualifier"]), d)
            self.fact_triple(s, JC.mentionedIn, d, d)
            self.statement(s, JC.quantity, qty, f, rf.doc_id, f.rule, f.confidence)
            if rf.object is not None:
                self.fact_triple(s, JC.about, URIRef(rf.object), d)
                self.statement(s, JC.about, URIRef(rf.object), f, rf.doc_id, f.rule, f.confidence)
            return
        o = URIRef(rf.object)
        self.fact_triple(s, JC[rf.predicate], o, d)
        self.statement(s, JC[rf.predicate], o, f, rf.doc_id, f.rule, f.confidence)
        if rf.predicate == "holds":  # the post's unit and role are read from the same sentence
            unit, role = self.kg.posts[rf.object]
            self.fact_triple(o, JC.role, _zh(role), d)
            self.fact_triple(o, JC.postIn, URIRef(unit), d)
            self.statement(o, JC.postIn, URIRef(unit), f, rf.doc_id, f.rule, f.confidence)

    def build(self) -> DumpGraph:
        self.dataset_header()
        self.documents()
        self.facts()
        self.entities()  # last: an entity is described wherever a fact cites it
        return self.g


def _evidence_span(fact: Fact) -> tuple[int, int]:
    """The smallest span of the sentence covering both ends of the fact."""
    spans = [(fact.subject.start, fact.subject.end)]
    if isinstance(fact.object, Mention) and fact.object.sentence == fact.subject.sentence:
        if fact.object.doc_id == fact.subject.doc_id:
            spans.append((fact.object.start, fact.object.end))
    return min(s for s, _ in spans), max(e for _, e in spans)


def _pinyin_label(label: str, cls: str) -> str:
    if cls == "Person":
        return iris.slug(label, cls).replace("-", " ").title()
    return iris.pinyin(label)


def to_graph(kg: KnowledgeGraph, docs: dict[str, Document], base: str = iris.RESOURCE) -> DumpGraph:
    return _Writer(kg, docs, check_base(base)).build()


def check_base(base: str) -> str:
    """A resource base must be an absolute IRI ending in ``/`` or ``#``."""
    formats.check_iri(base)
    if not base.endswith(("/", "#")):
        raise ValueError(f"resource base must end with / or #: {base!r}")
    return base


def serialise(graph: Graph, fmt: str) -> bytes:
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
