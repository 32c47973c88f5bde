"""spaCy pipeline components of the builder (registered factories).

``jiceng_gazetteer`` is the span ruler for the division gazetteer: every surface form of
every unit is a phrase pattern; matches land in ``doc.spans["gazetteer"]`` with the
class as label and the candidate codes as ``kb_id`` ("410184200000|410182200000" when a
name is ambiguous).  The same forms are the segmenter's user words, so each is one token.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from kg.gazetteer import load_gazetteer

SPANS_KEY = "gazetteer"


class GazetteerRuler:
    def __init__(self, nlp: Language, name: str = "jiceng_gazetteer") -> None:
        self.name = name
        self.gazetteer = load_gazetteer()
        self.matcher = PhraseMatcher(nlp.vocab, attr="ORTH")
        # Patterns are single tokens (the forms are user words), so build them directly
        # instead of running the segmenter over thousands of names.
        forms = sorted(self.gazetteer.forms)
        self.matcher.add(SPANS_KEY, [Doc(nlp.vocab, words=[form]) for form in forms])

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for _, start, end in self.matcher(doc):
            text = doc[start:end].text
            divisions = self.gazetteer.lookup(text)
            codes = "|".join(d.code for d in divisions)
            spans.append(Span(doc, start, end, label=divisions[0].cls, kb_id=codes))
        doc.spans[SPANS_KEY] = filter_spans(spans)
        return doc


@Language.factory("jiceng_gazetteer")
def make_gazetteer_ruler(nlp: Language, name: str) -> GazetteerRuler:
    return GazetteerRuler(nlp, name)
