"""ingest -> segment -> recognise -> relate -> resolve -> RDF, over many documents."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph

from kg import iri as iris
from kg.ingest import IngestError, ingest_file
from kg.lexicon import load_lexicon
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
        load_lexicon()  # a model too: load it with the others, not on the first word

    def analyse(self, text: str) -> Analysis:
        """Tokens and gazetteer matches of one sentence, as character spans."""
        return self.analyse_many([text])[0]

    def analyse_many(self, texts: list[str]) -> list[Analysis]:
        # The tokenizer segments a batch in one pass, far faster than one call per sentence.
        out = []
        # spaCy's Language.pipe tokenizes text by text; the tokenizer's own pipe batches.
        for doc in self.nlp.tokenizer.pipe(texts):
            for _, component in self.nlp.pipeline:
                doc = component(doc)
            tokens = [(t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
            spans = doc.spans["gazetteer"]
            out.append((tokens, [(s.start_char, s.end_char, s.label_, s.kb_id_) for s in spans]))
        return out

    def analyse_document(self, doc: Document) -> list[Analysis]:
        """Segment and match each sentence once; both recognition passes reuse it."""
        return self.analyse_many([s.text for s in doc.sentences])

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

    def first_pass(self, doc: Document) -> tuple[list[Analysis], list[list[Mention]]]:
        analysed = self.analyse_document(doc)
        return analysed, self.recognise(doc, analysed)

    def second_pass(
        self, doc: Document, analysed: list[Analysis], first: list[list[Mention]],
        known: frozenset[str],
    ) -> Extraction:  # fmt: skip
        per = self.recognise(doc, analysed, known) if known else first
        return Extraction(doc, [m for ms in per for m in ms], relate(doc, per))

    def extract_all(
        self,
        docs: list[Document],
        jobs: int = 1,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[Extraction]:
        """Two passes: a quoted name that is a programme in one article is one in all.

        With ``jobs`` > 1 documents are spread over forked worker processes that share
        this process's loaded models; the result is the same, in the same order.
        """
        if jobs > 1 and len(docs) > 1:
            return _parallel(self, docs, jobs, progress)
        first = [self.first_pass(doc) for doc in docs]
        known = _known_programmes(p for _, p in first)
        out = []
        for n, (doc, (analysed, per)) in enumerate(zip(docs, first, strict=True), 1):
            out.append(self.second_pass(doc, analysed, per, known))
            if progress:
                progress(n, len(docs), doc.doc_id)
        return out

    def extract(self, doc: Document) -> Extraction:
        return self.extract_all([doc])[0]


def _known_programmes(per_docs: Iterable[list[list[Mention]]]) -> frozenset[str]:
    """Names recognised as programmes by their kind: they count wherever they are quoted."""
    return frozenset(
        norm_name(m.text) for per in per_docs for ms in per for m in ms
        if m.rule in ("programme.kind", "programme.inner")
    )  # fmt: skip


# The extractor a forked worker inherits (copy-on-write: the models are loaded once).
_WORKER: Extractor | None = None


def _first_job(doc: Document) -> tuple[list[Analysis], list[list[Mention]]]:
    return _WORKER.first_pass(doc)


def _second_job(args: tuple) -> Extraction:
    return _WORKER.second_pass(*args)


def _parallel(
    extractor: Extractor, docs: list[Document], jobs: int,
    progress: Callable[[int, int, str], None] | None,
) -> list[Extraction]:  # fmt: skip
    global _WORKER
    _WORKER = extractor
    extractor.analyse("郑州市")  # load lazy model parts before forking, so children share them
    try:
        with mp.get_context("fork").Pool(jobs) as pool:
            first = pool.map(_first_job, docs, chunksize=1)
            known = _known_programmes(p for _, p in first)
            args = [(doc, a, p, known) for doc, (a, p) in zip(docs, first, strict=True)]
            out = []
            for n, extraction in enumerate(pool.imap(_second_job, args, chunksize=1), 1):
                out.append(extraction)
                if progress:
                    progress(n, len(docs), extraction.document.doc_id)
            return out
    finally:
        _WORKER = None


def build_graph(
    paths: Iterable[Path],
    *,
    strict: bool = False,
    base: str = iris.RESOURCE,
    progress: Callable[[int, int, str], None] | None = None,
    jobs: int = 1,
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
    extractions = Extractor().extract_all(list(docs.values()), jobs, progress) if docs else []
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
