"""ingest -> segment -> recognise -> relate -> resolve -> RDF, over many documents."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph

from kg import iri as iris
from kg.ingest import IngestError, ingest_file
from kg.model import Document, Extraction, Mention
from kg.rdf import to_graph
from kg.recognise import load_rules, norm_name, recognise, user_words
from kg.relate import relate
from kg.resolve import KnowledgeGraph, resolve

# One sentence after the spaCy pipeline: token spans, gazetteer matches (start, end, class, codes).
Analysis = tuple[list[tuple[int, int]], list[tuple[int, int, str, str]]]


@dataclass
class BuildReport:
    documents: int = 0
    sentences: int = 0
    duplicates_dropped: int = 0
    entities: Counter = field(default_factory=Counter)
    facts: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)  # one-line errors of bad files
    seconds: float = 0.0
    triples: int = 0


class Extractor:
    """Holds the loaded models; ``extract`` is a pure function of one document."""

    def __init__(self) -> None:
        import kg.components  # noqa: F401  (registers the spaCy factories)
        from kg.segment import make_nlp  # heavy: loaded once, only when building

        self.rules = load_rules()
        self.nlp = make_nlp(user_words(self.rules))
        self.nlp.add_pipe("jiceng_gazetteer")

    def analyse(self, text: str) -> Analysis:
        """Tokens and gazetteer matches of one sentence, as character spans."""
        doc = self.nlp(text)
        tokens = [(t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
        matches = [(s.start_char, s.end_char, s.label_, s.kb_id_) for s in doc.spans["gazetteer"]]
        return tokens, matches

    def tokens(self, text: str) -> list[tuple[int, int]]:
        return self.analyse(text)[0]

    def analyse_document(self, doc: Document) -> list[Analysis]:
        """Segment and match each sentence once; both recognition passes reuse it."""
        return [self.analyse(s.text) for s in doc.sentences]

    def recognise(
        self,
        doc: Document,
        analysed: list[Analysis],
        known_programmes: frozenset[str] = frozenset(),
    ) -> list[list[Mention]]:
        codes = frozenset(c for _, matches in analysed for m in matches for c in m[3].split("|"))
        return [
            recognise(
                s,
                tokens,
                self.rules,
                known_programmes=known_programmes,
                document_codes=codes,
                gazetteer=matches,
            )  # fmt: skip
            for s, (tokens, matches) in zip(doc.sentences, analysed, strict=True)
        ]

    def extract_all(self, docs: list[Document]) -> list[Extraction]:
        """Two passes: a quoted name that is a programme in one article is one in all."""
        analysed = [self.analyse_document(doc) for doc in docs]
        first = [self.recognise(doc, a) for doc, a in zip(docs, analysed, strict=True)]
        known = frozenset(
            norm_name(m.text) for per in first for ms in per for m in ms
            if m.rule in ("programme.kind", "programme.inner")
        )  # fmt: skip
        out = []
        for doc, a, per in zip(docs, analysed, first, strict=True):
            if known:
                per = self.recognise(doc, a, known)
            out.append(Extraction(doc, [m for ms in per for m in ms], relate(doc, per)))
        return out

    def extract(self, doc: Document) -> Extraction:
        return self.extract_all([doc])[0]


def build_graph(
    paths: Iterable[Path],
    *,
    strict: bool = False,
    base: str = iris.RESOURCE,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[Graph, KnowledgeGraph, BuildReport]:
    """Build the RDF graph of all readable documents.

    A bad file raises ``IngestError`` when ``strict``; otherwise it is skipped and
    reported in ``BuildReport.skipped``.
    """
    started = time.perf_counter()
    paths = list(paths)
    report = BuildReport()
    docs: dict[str, Document] = {}
    for path in paths:
        try:
            doc = ingest_file(path)
        except IngestError as exc:
            if strict:
                raise
            report.skipped.append(str(exc))
            continue
        if doc.doc_id in docs:
            raise IngestError(str(path), f"two inputs share the document id {doc.doc_id!r}")
        docs[doc.doc_id] = doc
    extractions = Extractor().extract_all(list(docs.values())) if docs else []
    if progress:
        progress(len(docs), len(docs), "extracted")
    kg = resolve(extractions, base)
    graph = to_graph(kg, docs, base)
    report.documents = len(docs)
    report.sentences = sum(len(d.sentences) for d in docs.values())
    report.duplicates_dropped = sum(d.duplicates_dropped for d in docs.values())
    report.entities = Counter(e.cls for e in kg.entities.values())
    report.facts = Counter(f.predicate for f in kg.facts)
    report.facts["partOf (gazetteer)"] = len(kg.gazetteer_facts)
    report.triples = len(graph)
    report.seconds = time.perf_counter() - started
    return graph, kg, report
