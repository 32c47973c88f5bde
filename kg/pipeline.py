"""ingest -> segment -> recognise -> relate -> resolve -> RDF, over many documents.

A build runs in four phases.  With ``jobs`` > 1 every phase but resolution runs in worker
processes forked once, after the models are loaded (kg/workers.py), and each document stays
in the worker that read it, so that only small results travel between processes:

1. read (workers): ingest a file and run the first recognition pass on it;
2. extract (workers): the second pass, once every document's programme names are known
   (a quoted name that is a programme in one article is one in all);
3. resolve (this process): one node per real thing across all documents (kg/resolve.py),
   and the part of the graph that needs the whole resolution (kg/rdf.py ``plan``);
4. write (workers): each document's own subjects as RDF, written as blocks of the output
   format (kg/formats.py); this process writes the shared part's blocks meanwhile and
   puts all of them in order.

The output does not depend on ``jobs``: the same functions make the same blocks, and
``formats.assemble`` orders them; with ``jobs`` = 1 the phases run in this process.
"""

from __future__ import annotations

import gc
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kg import formats, rdf
from kg import iri as iris
from kg.ingest import IngestError, ingest_file
from kg.lexicon import load_lexicon
from kg.model import Document, Extraction, Fact, Mention
from kg.recognise import load_rules, norm_name, recognise, user_words
from kg.relate import relate
from kg.resolve import KnowledgeGraph, resolve
from kg.workers import Forked, Inline

# One sentence after the spaCy pipeline: token spans, gazetteer matches (start, end, class, codes).
Analysis = tuple[list[tuple[int, int]], list[tuple[int, int, str, str]]]
Progress = Callable[[int, int, str], None]


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
    stages: dict[str, float] = field(default_factory=dict)  # seconds: read, extract, resolve, write


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
        self, docs: list[Document], progress: Callable[[int, int, str], None] | None = None
    ) -> list[Extraction]:
        """Two passes: a quoted name that is a programme in one article is one in all.

        (``build_graph`` and ``build_dump`` run the same passes spread over processes.)
        """
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


# --------------------------------------------------------------------------- build


def build_graph(
    paths: Iterable[Path],
    *,
    strict: bool = False,
    base: str = iris.RESOURCE,
    progress: Progress | None = None,
    jobs: int = 1,
) -> tuple[rdf.DumpGraph, KnowledgeGraph, BuildReport]:
    """Build the RDF graph of all readable documents.

    A bad file raises ``IngestError`` when ``strict``; otherwise it is skipped and
    reported in ``BuildReport.skipped``.
    """
    graph, kg, report = _build(list(paths), None, strict, base, progress, jobs, None)
    assert isinstance(graph, rdf.DumpGraph)
    return graph, kg, report


def build_dump(
    paths: Iterable[Path],
    fmt: str,
    *,
    strict: bool = False,
    base: str = iris.RESOURCE,
    progress: Progress | None = None,
    jobs: int = 1,
    extractor: Extractor | None = None,
) -> tuple[bytes, KnowledgeGraph, BuildReport]:
    """The dump in one format (``rdf.serialise``'s names), as ``build_graph`` builds it.

    The bytes are those of ``serialise(build_graph(paths)[0], fmt)``, but most of the
    graph is made and written in the workers: they need not send it back.  ``extractor``:
    models already loaded (else they are loaded here).
    """
    data, kg, report = _build(list(paths), fmt, strict, base, progress, jobs, extractor)
    assert isinstance(data, bytes)
    return data, kg, report


def _build(
    paths: list[Path], fmt: str | None, strict: bool, base: str, progress: Progress | None,
    jobs: int, extractor: Extractor | None,
) -> tuple[bytes | rdf.DumpGraph, KnowledgeGraph, BuildReport]:  # fmt: skip
    started = time.perf_counter()
    base = rdf.check_base(base)
    report = BuildReport()
    context = _Context(extractor)
    size = min(jobs, len(paths))
    if size > 1:  # everything the workers need, loaded once here, shared by all of them
        context.extractor.analyse("郑州市")  # also the parts spaCy loads lazily
        if fmt == "json-ld":
            rdf.jsonld_context(base)  # parses the ontology
    clock = _Clock(report.stages)
    with Forked(context, size) if size > 1 else Inline(context) as pool:
        docs, where, known = _read_all(pool, paths, strict, report)
        clock("read")
        with _gc_paused():  # from here on, no cycles: see _gc_paused
            extractions = _extract_all(pool, docs, where, known, progress)
            clock("extract")
            kg = resolve(extractions, base)
            shared, parts = rdf.plan(kg, docs, base)
            clock("resolve")
            out, report.triples = _write_all(pool, shared, parts, where, fmt, base)
            clock("write")
    report.documents = len(docs)
    report.duplicates_dropped = sum(d.duplicates_dropped for d in docs.values())
    report.entities = Counter(e.cls for e in kg.entities.values())
    report.facts = Counter(f.predicate for f in kg.facts)
    report.facts["partOf (gazetteer)"] = len(kg.gazetteer_facts)
    report.seconds = time.perf_counter() - started
    return out, kg, report


def _read_all(
    pool: Forked | Inline, paths: list[Path], strict: bool, report: BuildReport
) -> tuple[dict[str, Document], dict[str, tuple[int, int]], frozenset[str]]:
    """Headers of the readable documents in input order, where each is held, programme names."""
    order = sorted(range(len(paths)), key=lambda i: -_size(paths[i]))  # big first: even finish
    reads: dict[int, _Read | _Unreadable] = {}
    worker: dict[int, int] = {}
    for k, w, result in pool.run(_read, [(i, str(paths[i])) for i in order]):
        reads[order[k]], worker[order[k]] = result, w
    docs: dict[str, Document] = {}
    where: dict[str, tuple[int, int]] = {}  # doc id -> (input position, worker)
    known: set[str] = set()
    for i, path in enumerate(paths):  # errors in input order, as if read one by one
        r = reads[i]
        if isinstance(r, _Unreadable):
            if strict:
                raise IngestError(r.path, r.problem)
            report.skipped.append(str(IngestError(r.path, r.problem)))
            continue
        doc_id = r.header.doc_id
        if doc_id in docs:
            raise IngestError(str(path), f"two inputs share the document id {doc_id!r}")
        docs[doc_id], where[doc_id] = r.header, (i, worker[i])
        known |= r.programmes
        report.sentences += r.sentences
    return docs, where, frozenset(known)


def _extract_all(
    pool: Forked | Inline, docs: dict[str, Document], where: dict[str, tuple[int, int]],
    known: frozenset[str], progress: Progress | None,
) -> list[Extraction]:  # fmt: skip
    ids = list(docs)
    items = [(where[d][0], known) for d in ids]
    found: dict[str, tuple[list[Mention], list[Fact]]] = {}
    for n, (k, _, result) in enumerate(pool.run(_extract, items, [where[d][1] for d in ids]), 1):
        found[ids[k]] = result
        if progress:
            progress(n, len(ids), ids[k])
    return [Extraction(docs[d], *found[d]) for d in ids]


def _write_all(
    pool: Forked | Inline, shared: rdf.DumpGraph, parts: dict[str, rdf.DocumentPart],
    where: dict[str, tuple[int, int]], fmt: str | None, base: str,
) -> tuple[bytes | rdf.DumpGraph, int]:  # fmt: skip
    """The dump (or, without ``fmt``, the whole graph) and its number of triples."""
    # One task per worker, for all the documents it holds: one answer each, in key order.
    held: dict[int, list[tuple[int, rdf.DocumentPart]]] = {}
    for doc_id, part in parts.items():
        i, w = where[doc_id]
        held.setdefault(w, []).append((i, part))
    workers = sorted(held)
    results = pool.run(_write, [(held[w], fmt, base) for w in workers], workers)  # start now
    if fmt is None:
        for _, _, (graphs, _, _) in results:
            for graph, triples in graphs.items():
                shared.update(triples, graph)
        return shared, len(shared)
    writer = rdf.layout(fmt, base)
    count = len(shared)
    if writer.named:
        named = {g: formats.blocks(writer, ts, g) for g, ts in shared.named.items()}
    else:
        union = formats.blocks(writer, shared.triples)
    for _, _, (blocks, used, n) in results:
        writer.used |= used
        count += n
        if writer.named:
            for graph, theirs in blocks.items():
                named.setdefault(graph, []).extend(theirs)
        else:
            union.extend(blocks)
    return formats.assemble(writer, named if writer.named else union), count


# --------------------------------------------------------------------------- in the workers


@dataclass
class _Held:
    """A document in the process that read it; its analysis is kept until the second pass."""

    doc: Document
    analysed: list[Analysis] | None
    first: list[list[Mention]] | None


class _Context:
    """What each process keeps: the models, and the documents it read (by input position)."""

    def __init__(self, extractor: Extractor | None) -> None:
        self._extractor = extractor
        self.held: dict[int, _Held] = {}
        self.layouts: dict[tuple[str, str], formats.Layout] = {}

    @property
    def extractor(self) -> Extractor:
        if self._extractor is None:  # in this process, only once some file was readable
            self._extractor = Extractor()
        return self._extractor

    def layout(self, fmt: str, base: str) -> formats.Layout:
        if (fmt, base) not in self.layouts:
            self.layouts[(fmt, base)] = rdf.layout(fmt, base)
        return self.layouts[(fmt, base)]


@dataclass
class _Read:
    header: Document  # the document without its text and sentences (they stay where read)
    sentences: int
    programmes: frozenset[str]


@dataclass
class _Unreadable:  # an IngestError, as data: its constructor does not survive pickling
    path: str
    problem: str


def _read(context: _Context, item: tuple[int, str]) -> _Read | _Unreadable:
    """Phase 1: ingest the file at input position i and run the first pass; keep both."""
    i, path = item
    try:
        with _gc_paused():
            doc = ingest_file(path)
    except IngestError as exc:
        return _Unreadable(exc.path, exc.problem)
    analysed, first = context.extractor.first_pass(doc)
    context.held[i] = _Held(doc, analysed, first)
    header = replace(doc, raw="", sentences=[])
    return _Read(header, len(doc.sentences), _known_programmes([first]))


def _extract(
    context: _Context, item: tuple[int, frozenset[str]]
) -> tuple[list[Mention], list[Fact]]:
    """Phase 2: the second pass, knowing every document's programme names."""
    i, known = item
    held = context.held[i]
    extraction = context.extractor.second_pass(held.doc, held.analysed, held.first, known)  # type: ignore[arg-type]
    held.analysed = held.first = None  # not needed again
    return extraction.mentions, extraction.facts


def _write(
    context: _Context, item: tuple[list[tuple[int, rdf.DocumentPart]], str | None, str]
) -> tuple[list[formats.Block] | dict[str, Any], set[str], int]:
    """Phase 4: the documents' own subjects as blocks of the format, sorted (by graph for
    TriG and N-Quads: {graph: blocks}), the prefixes they use, and how many triples;
    without a format, the triples, {graph: triples}."""
    docs, fmt, base = item
    writer = context.layout(fmt, base) if fmt else None
    union: list[formats.Block] = []
    graphs: dict[str, Any] = {}
    count = 0
    with _gc_paused():
        for i, part in docs:
            doc = context.held.pop(i).doc  # the last phase: let it go
            graph = rdf.document_iri(base, doc.doc_id)
            triples = rdf.document_graph(doc, part, base)
            count += len(triples)
            if writer is None:
                graphs[graph] = triples
            elif writer.named:
                graphs[graph] = sorted(formats.blocks(writer, triples, graph))
            else:
                union += formats.blocks(writer, triples)
        union.sort()  # here rather than in the parent, which then merges sorted runs
    used = set(writer.used) if writer else set()
    return (union if writer and not writer.named else graphs), used, count


# --------------------------------------------------------------------------- helpers


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while making many small acyclic objects (documents,
    mentions, triples, blocks): the collector's full passes over the growing heap cost
    more than the work (a third of the RDF phase).  Ingest, the second pass and all that
    follows make no reference cycles; were there any, they are collected afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Clock:
    """Seconds since the previous call, recorded under a phase name."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into, self.last = into, time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.into[phase] = now - self.last
        self.last = now


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reading it will say what is wrong
