"""The resolved graph as RDF: entities, documents, sentences and reified evidence.

The shape is the contract in ``ontology/README.md``.  Output is deterministic: no
blank nodes, IRIs derived from content, and serialisations sorted.
"""

from __future__ import annotations

from decimal import Decimal

from rdflib import RDF, RDFS, XSD, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, SKOS

from kg import iri as iris
from kg.model import Document, Fact, Mention
from kg.resolve import KnowledgeGraph, ResolvedFact

JC = Namespace(iris.ONTOLOGY)
ONTOLOGY_IRI = URIRef("https://w3id.org/jiceng/ontology")
GAZETTEER = "dataset/zhengzhou-divisions"
PINYIN = "zh-Latn-pinyin"


def _zh(text: str) -> Literal:
    return Literal(text, lang="zh")


class _Writer:
    def __init__(self, kg: KnowledgeGraph, docs: dict[str, Document], base: str) -> None:
        self.kg, self.docs, self.base = kg, docs, base
        self.g = Graph()
        for prefix, ns in (("jc", JC), ("res", Namespace(base)), ("skos", SKOS),
                           ("prov", PROV), ("dcterms", DCTERMS), ("owl", OWL)):  # fmt: skip
            self.g.bind(prefix, ns)
        self.doc_of: dict[URIRef, str] = {}  # triple subject -> document (for TriG)

    def res(self, path: str) -> URIRef:
        return URIRef(self.base + path)

    def add(self, s, p, o, doc_id: str | None = None) -> None:
        self.g.add((s, p, o))

    # ----------------------------------------------------------------- nodes

    def dataset_header(self) -> None:
        ds = URIRef(self.base + "dataset/jiceng-kg")
        self.add(ds, RDF.type, PROV.Entity)
        self.add(ds, OWL.imports, ONTOLOGY_IRI)
        gaz = self.res(GAZETTEER)
        self.add(gaz, RDF.type, PROV.Entity)
        self.add(
            gaz, RDFS.label, Literal("Zhengzhou administrative divisions (NBS 2023)", lang="en")
        )
        self.add(gaz, DCTERMS.source,
                 URIRef("https://github.com/modood/Administrative-divisions-of-China"))  # fmt: skip

    def documents(self) -> None:
        for doc_id, doc in sorted(self.docs.items()):
            d = self.res(f"document/{doc_id}")
            self.add(d, RDF.type, JC.Document)
            self.add(d, RDFS.label, _zh(doc.title or doc_id))
            if doc.title:
                self.add(d, DCTERMS.title, _zh(doc.title))
            self.add(d, DCTERMS.identifier, Literal(doc_id))
            self.add(d, JC.sourceFile, Literal(doc.path))
            self.add(d, JC.duplicateParagraphs, Literal(doc.duplicates_dropped))
            self.add(d, JC.sentenceCount, Literal(len(doc.sentences)))
            people = {e.label: iri for iri, e in self.kg.entities.items()
                      if e.cls == "Person" and doc_id in e.documents}  # fmt: skip
            for name in doc.bylines:
                self.add(d, JC.byline, _zh(name))
                if name in people:
                    self.add(d, DCTERMS.creator, URIRef(people[name]))
            if doc.date:
                dtype = XSD.date if len(doc.date) == 10 else XSD.gYear
                self.add(d, DCTERMS.date, Literal(doc.date, datatype=dtype))
            for s in doc.sentences:
                node = self.sentence(doc_id, s.index)
                self.add(node, RDF.type, JC.Sentence)
                self.add(node, JC.text, _zh(s.text))
                self.add(node, JC.inDocument, d)
                self.add(node, JC["index"], Literal(s.index))
                self.add(node, JC.startOffset, Literal(s.start))
                self.add(node, JC.endOffset, Literal(s.end))

    def sentence(self, doc_id: str, index: int) -> URIRef:
        return self.res(f"sentence/{doc_id}-{index:04d}")

    def entities(self) -> None:
        for iri, e in sorted(self.kg.entities.items()):
            node = URIRef(iri)
            self.add(node, RDF.type, JC[e.cls])
            self.add(node, RDFS.label, _zh(e.label))
            self.add(node, RDFS.label, Literal(_pinyin_label(e.label, e.cls), lang=PINYIN))
            self.add(node, SKOS.prefLabel, _zh(e.label))
            for alt in sorted(e.alt_labels):
                self.add(node, SKOS.altLabel, _zh(alt))
            if e.code:
                self.add(node, JC.adminCode, Literal(e.code))
                self.statement(node, JC.adminCode, Literal(e.code), None, None, "gazetteer")
            for doc_id in sorted(e.documents):
                self.add(node, JC.mentionedIn, self.res(f"document/{doc_id}"))

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
        self.add(node, RDF.type, RDF.Statement)
        self.add(node, RDF.subject, s)
        self.add(node, RDF.predicate, p)
        self.add(node, RDF.object, o)
        self.add(node, JC.rule, Literal(rule))
        self.add(node, JC.confidence, Literal(Decimal(f"{conf:.2f}")))
        if evidence is None:
            self.add(node, PROV.wasDerivedFrom, self.res(GAZETTEER))
            return
        sent, raw_start, raw_end = evidence
        self.add(node, PROV.wasDerivedFrom, self.res(f"document/{doc_id}"))
        self.add(node, JC.sentence, self.sentence(doc_id, sent.index))
        self.add(node, JC.evidence, _zh(sent.text))
        self.add(node, JC.startOffset, Literal(raw_start))
        self.add(node, JC.endOffset, Literal(raw_end))

    def facts(self) -> None:
        for rf in self.kg.facts:
            self.fact(rf)
        for s, p, o in self.kg.gazetteer_facts:
            self.add(URIRef(s), JC[p], URIRef(o))
            self.statement(URIRef(s), JC[p], URIRef(o), None, None, "gazetteer")
        for post, (unit, role) in sorted(self.kg.posts.items()):
            self.add(URIRef(post), JC.role, _zh(role))
            self.add(URIRef(post), JC.postIn, URIRef(unit))

    def fact(self, rf: ResolvedFact) -> None:
        s = URIRef(rf.subject)
        f = rf.fact
        if rf.predicate == "about":
            values = self.kg.statistics[rf.subject]
            self.add(s, RDF.type, JC.Statistic)
            qty = Literal(Decimal(values["quantity"]), datatype=XSD.decimal)
            self.add(s, JC.quantity, qty)
            self.add(s, JC.unit, _zh(values["unit"]))
            self.add(s, JC.measure, _zh(values["measure"]))
            if values.get("qualifier"):
                self.add(s, JC.qualifier, _zh(values["qualifier"]))
            self.add(s, JC.mentionedIn, self.res(f"document/{rf.doc_id}"))
            self.statement(s, JC.quantity, qty, f, rf.doc_id, f.rule, f.confidence)
            if rf.object is not None:
                self.add(s, JC.about, URIRef(rf.object))
                self.statement(s, JC.about, URIRef(rf.object), f, rf.doc_id, f.rule, f.confidence)
            return
        o = URIRef(rf.object)
        self.add(s, JC[rf.predicate], o)
        self.statement(s, JC[rf.predicate], o, f, rf.doc_id, f.rule, f.confidence)
        if rf.predicate == "holds":
            unit = URIRef(self.kg.posts[rf.object][0])
            self.statement(o, JC.postIn, unit, f, rf.doc_id, f.rule, f.confidence)

    def build(self) -> Graph:
        self.dataset_header()
        self.documents()
        self.entities()
        self.facts()
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


def to_graph(kg: KnowledgeGraph, docs: dict[str, Document], base: str = iris.RESOURCE) -> Graph:
    return _Writer(kg, docs, base).build()


def serialise(graph: Graph, fmt: str) -> bytes:
    """Deterministic bytes for one of: turtle, nt, json-ld, xml, trig, nquads."""
    if fmt == "nt":
        lines = sorted(set(graph.serialize(format="nt").splitlines()))
        return ("\n".join(line for line in lines if line.strip()) + "\n").encode("utf-8")
    if fmt in ("trig", "nquads"):
        ds = Dataset()
        for prefix, ns in graph.namespaces():
            ds.bind(prefix, ns)
        default = ds.graph(URIRef(iris.RESOURCE + "graph/default"))
        for t in graph:
            default.add(t)
        out = ds.serialize(format=fmt)
        if fmt == "nquads":
            out = "\n".join(sorted(line for line in out.splitlines() if line.strip())) + "\n"
        return out.encode("utf-8")
    if fmt == "json-ld":
        return graph.serialize(format="json-ld", indent=1, sort_keys=True).encode("utf-8")
    return graph.serialize(format=fmt).encode("utf-8")
