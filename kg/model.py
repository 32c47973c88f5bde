"""Plain dataclasses that flow through the pipeline.

ingest -> Document(sentences) -> segment -> recognise -> Mention -> relate -> Fact
-> resolve -> Entity -> rdf.  Offsets are always Python ``str`` indices into the
*raw* decoded file text (``Document.raw``), so any fact can be shown in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sentence:
    """One sentence of a document, after layout clean-up.

    ``text`` is the cleaned sentence; ``offsets[i]`` is the raw-file index of
    ``text[i]`` (cleaning drops column-break newlines and stray spaces, so the
    mapping is not a plain shift).  ``start``/``end`` span the sentence in the raw
    file: ``raw[start:end]`` contains the sentence with its layout noise.
    """

    doc_id: str
    index: int  # 0-based position among the document's kept sentences
    text: str
    start: int
    end: int
    offsets: tuple[int, ...]
    paragraph: int = 0  # index of the kept paragraph the sentence belongs to
    is_heading: bool = False

    def raw_span(self, i: int, j: int) -> tuple[int, int]:
        """Raw-file span of ``text[i:j]`` (j exclusive)."""
        if i >= j:
            pos = self.offsets[i] if i < len(self.offsets) else self.end
            return pos, pos
        return self.offsets[i], self.offsets[j - 1] + 1


@dataclass
class Document:
    doc_id: str  # file stem, stable
    path: str
    raw: str  # the decoded file text, unchanged
    title: str = ""
    bylines: list[str] = field(default_factory=list)  # names only
    date: str | None = None  # ISO date "2020-10-15" or year "2021" where stated
    sentences: list[Sentence] = field(default_factory=list)
    duplicates_dropped: int = 0  # paragraphs dropped as verbatim repeats


@dataclass(frozen=True)
class Mention:
    """A recognised span of a sentence."""

    doc_id: str
    sentence: int  # Sentence.index
    text: str  # surface form as in the cleaned sentence
    label: str  # ontology class local name, e.g. "Street", "Person", "Programme"
    start: int  # index into Sentence.text
    end: int
    rule: str  # id of the rule or gazetteer that produced it
    code: str | None = None  # official division code when linked to the gazetteer
    canonical: str | None = None  # normalised name when known (gazetteer name)


@dataclass(frozen=True)
class Fact:
    """A relation between two mentions (or a mention and a literal)."""

    subject: Mention
    predicate: str  # ontology property local name, e.g. "secretaryOf"
    object: Mention | str
    rule: str
    confidence: float
    role: str | None = None  # the post title as written, for holds/secretaryOf
    extra: tuple[tuple[str, str], ...] = ()  # e.g. statistics: quantity, unit, qualifier


@dataclass
class Entity:
    """One real-world thing after resolution, with a stable IRI."""

    iri: str
    label: str  # canonical Chinese label
    cls: str  # ontology class local name
    alt_labels: set[str] = field(default_factory=set)
    code: str | None = None
    documents: set[str] = field(default_factory=set)


@dataclass
class Extraction:
    """Everything extracted from one document."""

    document: Document
    mentions: list[Mention] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
