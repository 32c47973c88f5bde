"""Deterministic writers for RDF syntaxes: N-Triples, N-Quads, Turtle, TriG, RDF/XML, JSON-LD.

rdflib's serialisers follow the store's iteration order (hash-seeded sets for named graphs,
unsorted subjects in RDF/XML and JSON-LD), so the same graph can come out in a different
order from one run to the next.  These writers sort everything, so the bytes depend only
on the triples, and keep to the conservative core of each syntax (prefixed names only for
plain local names, full IRIs for graph names, no RDF/XML abbreviations) so that older
parsers read them too.  Blank nodes are written with the labels they have: callers that
need stable output must give them stable labels (``stable_bnodes``).

The writers work on triples of N-Triples term strings (``<iri>``, ``_:b0``, ``"text"@zh``,
``"5"^^<…#integer>``): a term's N-Triples form is also its sort key, and hashing and sorting
plain strings costs a fraction of doing it with rdflib terms.  rdflib terms are accepted
too and converted on the way in (``nt_term``).

Output is made of *blocks*, one per subject (per subject and named graph for TriG and
N-Quads), each with a sort key.  A block depends only on its subject's own triples, so
blocks can be made in several processes and put together afterwards (``assemble``) into
the very bytes that writing the whole graph at once gives; kg/pipeline.py does that.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from rdflib import OWL, RDF, XSD, BNode, Graph, Literal, URIRef
from rdflib.compare import to_canonical_graph

Term = URIRef | BNode | Literal
Triple = tuple[Term, Term, Term]
NtTriple = tuple[str, str, str]  # subject, predicate, object as N-Triples terms
Preds = dict[str, set[str]]  # one subject's predicates -> objects
Block = tuple[str, bytes]  # (sort key, text) of one subject

# Characters an IRI may not contain (RFC 3987 and the IRIREF production of N-Triples/Turtle).
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')
# Conservative prefixed-name local part: valid in Turtle 1.0 and 1.1 and as an XML NCName, no
# escapes, no leading digit (older Turtle parsers reject it), no dots.
_SAFE_LOCAL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Characters XML 1.0 cannot carry at all (RDF/XML must refuse such literals).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ECHAR = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'[\\"\n\r\t]')
_UNESCAPE = {v: k for k, v in _ECHAR.items()}
_ESCAPED = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|(.))", re.S)

TYPE = f"<{RDF.type}>"
ONTOLOGY = f"<{OWL.Ontology}>"
_XSD_INTEGER, _XSD_DECIMAL, _XSD_BOOLEAN = str(XSD.integer), str(XSD.decimal), str(XSD.boolean)
# RDF/XML names that may not be property elements (RDF/XML grammar, section 7.2.5).
_NOT_PROPERTY = {
    str(RDF) + n
    for n in ("RDF", "ID", "about", "bagID", "parseType", "resource", "nodeID", "li",
              "aboutEach", "aboutEachPrefix", "Description", "datatype")
}  # fmt: skip


# --------------------------------------------------------------------------- terms


def check_iri(iri: str) -> str:
    """An absolute IRI without characters that no syntax may carry unescaped."""
    if _BAD_IRI.search(iri) or not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", iri):
        raise ValueError(f"not an absolute IRI: {iri!r}")
    return iri


def _string(text: str) -> str:
    """A double-quoted N-Triples/Turtle string: ECHARs, UCHARs for other control characters."""
    out = _NEEDS_ESCAPE.sub(lambda m: _ECHAR[m.group()], text)
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04X}", out) + '"'


def nt_iri(iri: str) -> str:
    """An IRI as an N-Triples term, checked."""
    return f"<{check_iri(iri)}>"


def nt_literal(text: str, lang: str | None = None) -> str:
    """A plain (``xsd:string``) or language-tagged literal as an N-Triples term."""
    return f"{_string(text)}@{lang}" if lang else _string(text)


def nt_integer(n: int) -> str:
    return f'"{n}"^^<{_XSD_INTEGER}>'


def _datatype(lit: Literal) -> URIRef | None:
    """The datatype to write: none for plain and xsd:string literals (the same in RDF 1.1)."""
    return None if lit.language or lit.datatype in (None, XSD.string) else lit.datatype


@functools.lru_cache(maxsize=1 << 20)  # the same IRIs recur in thousands of triples
def nt_term(term: Term) -> str:
    """A term in N-Triples syntax (also valid Turtle, TriG and N-Quads)."""
    if isinstance(term, URIRef):
        return f"<{check_iri(str(term))}>"
    if isinstance(term, BNode):
        return f"_:{_bnode_label(str(term))}"
    text = _string(str(term))
    if term.language:
        return f"{text}@{term.language}"
    dtype = _datatype(term)
    return f"{text}^^<{check_iri(str(dtype))}>" if dtype else text


def _nt(term: Term | str) -> str:
    return term if type(term) is str else nt_term(term)  # URIRef is a str subclass


def nt_triples(triples: Iterable[Triple | NtTriple]) -> Iterator[NtTriple]:
    """Triples as N-Triples term strings, whether given as rdflib terms or already as strings."""
    for t in triples:
        s, p, o = t
        if type(s) is str and type(p) is str and type(o) is str:
            yield t  # type: ignore[misc]
        else:
            yield _nt(s), _nt(p), _nt(o)


def _bnode_label(label: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", label):
        raise ValueError(f"blank node label {label!r} is not portable")
    return label


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def one(m: re.Match) -> str:
        return chr(int(m.group(1), 16)) if m.group(1) else _UNESCAPE["\\" + m.group(2)]

    return _ESCAPED.sub(one, body)


def literal_parts(term: str) -> tuple[str, str | None, str | None]:
    """(lexical form, language, datatype IRI) of an N-Triples literal; datatype None if plain."""
    end = term.rindex('"')  # neither a language tag nor an IRI holds a quote
    lex, rest = _unescape(term[1:end]), term[end + 1 :]
    if rest.startswith("@"):
        return lex, rest[1:], None
    if rest.startswith("^^"):
        return lex, None, rest[3:-1]
    return lex, None, None


def value_of(term: str) -> str:
    """What rdflib's ``str(term)`` gives: the IRI, the blank node label or the lexical form."""
    if term[0] == "<":
        return term[1:-1]
    if term[0] == "_":
        return term[2:]
    return literal_parts(term)[0]


def stable_bnodes(graph: Graph) -> Graph:
    """A copy whose blank nodes are labelled from their content (b0, b1, … in hash order)."""
    canonical = to_canonical_graph(graph)
    labels = sorted({n for t in canonical for n in t if isinstance(n, BNode)}, key=str)
    rename = {old: BNode(f"b{i}") for i, old in enumerate(labels)}
    out = Graph()
    for t in canonical:
        out.add(tuple(rename.get(n, n) for n in t))  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------- blocks


def group(triples: Iterable[NtTriple]) -> dict[str, Preds]:
    """Subject -> predicate -> objects."""
    by_subject: dict[str, Preds] = {}
    for s, p, o in triples:
        preds = by_subject.get(s)
        if preds is None:
            by_subject[s] = {p: {o}}
        elif p in preds:
            preds[p].add(o)
        else:
            preds[p] = {o}
    return by_subject


class Layout:
    """How one syntax writes a subject's block and puts the blocks together.

    ``used`` collects the prefixes the blocks used; blocks made elsewhere (another
    process) bring theirs, to be added before ``finish`` writes the header.
    """

    named = False  # True for TriG and N-Quads: blocks are per (named graph, subject)

    def __init__(self) -> None:
        self.used: set[str] = set()

    def key(self, subject: str, preds: Preds) -> str:
        return subject

    def block(self, subject: str, preds: Preds, graph: str | None) -> bytes:
        raise NotImplementedError

    def finish(self, texts: list[bytes]) -> bytes:
        """The document, from the blocks' texts in key order (graph texts if ``named``)."""
        return b"".join(texts)

    def graph(self, name: str | None, texts: list[bytes]) -> bytes:
        """One named graph, from its blocks' texts in key order (``named`` layouts)."""
        return b"".join(texts)


def _ontology_first(subject: str, preds: Preds) -> str:
    """Ontology headers first (as OWL tools expect), then subjects in N-Triples order."""
    return ("0" if ONTOLOGY in preds.get(TYPE, ()) else "1") + subject


def blocks(layout: Layout, triples: Iterable[NtTriple], graph: str | None = None) -> list[Block]:
    """The blocks of these triples (unsorted): each subject's triples must all be here."""
    by_subject = group(triples)
    block, key = layout.block, layout.key
    return [(key(s, preds), block(s, preds, graph)) for s, preds in by_subject.items()]


def _texts(parts: Iterable[Block]) -> list[bytes]:
    ordered = sorted(parts, key=lambda b: b[0])
    for (a, _), (b, _) in zip(ordered, ordered[1:], strict=False):
        if a == b:  # a subject's triples were split between two block makers
            raise ValueError(f"two blocks for one subject (key {a})")
    return [text for _, text in ordered]


def assemble(layout: Layout, parts: Iterable[Block] | Mapping[str | None, list[Block]]) -> bytes:
    """The document from blocks made anywhere: a list, or {graph name: list} if ``named``."""
    if not layout.named:
        return layout.finish(_texts(parts))  # type: ignore[arg-type]
    graphs = parts if isinstance(parts, Mapping) else {None: parts}
    # sorted by the IRI itself, as rdflib's str() of the name sorts (the default graph first)
    names = sorted(graphs, key=lambda g: "" if g is None else g[1:-1])
    return layout.finish([layout.graph(g, _texts(graphs[g])) for g in names])


def write(layout: Layout, triples: Iterable[Triple | NtTriple]) -> bytes:
    return assemble(layout, blocks(layout, nt_triples(triples)))


def write_named(layout: Layout, named: Mapping[Term | str | None, Iterable[Triple]]) -> bytes:
    parts: dict[str | None, list[Block]] = {}
    for name, triples in named.items():
        g = None if name is None else _nt(name)
        parts.setdefault(g, []).extend(blocks(layout, nt_triples(triples), g))
    return assemble(layout, parts)


# --------------------------------------------------------------------------- line formats


class NTriples(Layout):
    def block(self, subject: str, preds: Preds, graph: str | None) -> bytes:
        # Each subject's lines sorted, subjects in order: all lines sorted.  A line goes on
        # from its subject with a space; a longer subject that begins with this one (_:b1,
        # _:b10) goes on with a label character, which sorts after the space.  (No IRI
        # term begins another: it ends in ">".)
        end = " .\n" if graph is None else f" {graph} .\n"
        lines = sorted(f"{subject} {p} {o}{end}" for p, objs in preds.items() for o in objs)
        return "".join(lines).encode("utf-8")


class NQuads(NTriples):
    """One named graph after another (sorted by name), each graph's lines sorted."""

    named = True


def ntriples(triples: Iterable[Triple | NtTriple]) -> bytes:
    return write(NTriples(), triples)


def nquads(named: Mapping[Term | str | None, Iterable[Triple]]) -> bytes:
    return write_named(NQuads(), named)


# --------------------------------------------------------------------------- Turtle, TriG


class _Names:
    """Prefixed names where they are safe; records which prefixes were used."""

    def __init__(self, prefixes: Mapping[str, str], used: set[str]) -> None:
        # longest namespace first, so jc: wins over a shorter namespace that also matches
        self.prefixes = sorted(prefixes.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        self.used = used
        self.written: dict[str, str] = {}  # each term is spelled once, then looked up

    def qname(self, iri: str) -> tuple[str, str] | None:
        for prefix, ns in self.prefixes:
            if iri.startswith(ns) and _SAFE_LOCAL.fullmatch(iri[len(ns) :]):
                return prefix, iri[len(ns) :]
        return None

    def iri(self, iri: str) -> str:
        q = self.qname(check_iri(iri))
        if q is None:
            return f"<{iri}>"
        self.used.add(q[0])
        return f"{q[0]}:{q[1]}"

    def term(self, term: str) -> str:
        written = self.written.get(term)
        if written is None:
            written = self.written[term] = self._term(term)
        return written

    def _term(self, term: str) -> str:
        if term[0] == "<":
            return self.iri(term[1:-1])
        if term[0] == '"':
            end = term.rindex('"')
            if term.startswith("^^", end + 1):
                dtype, lex = term[end + 4 : -1], term[1:end]
                if dtype == _XSD_INTEGER and re.fullmatch(r"[+-]?[0-9]+", lex):
                    return lex
                if dtype == _XSD_DECIMAL and re.fullmatch(r"[+-]?[0-9]*\.[0-9]+", lex):
                    return lex
                if dtype == _XSD_BOOLEAN and lex in ("true", "false"):
                    return lex
                return f"{term[: end + 1]}^^{self.iri(dtype)}"
        return term  # plain and language-tagged literals, blank nodes: as in N-Triples

    def header(self, prefixes: Mapping[str, str]) -> bytes:
        lines = [f"@prefix {p}: <{prefixes[p]}> ." for p in sorted(self.used)]
        return ("\n".join(lines) + "\n\n" if lines else "").encode("utf-8")


class Turtle(Layout):
    """One block per subject: rdf:type first, then predicates and objects sorted."""

    key = staticmethod(_ontology_first)

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.names = _Names(prefixes, self.used)

    def block(self, subject: str, preds: Preds, graph: str | None) -> bytes:
        # The hot loop of writing: terms are looked up in the cache directly, and literals
        # other than typed ones (they end in a quote or a language tag, not ">") are
        # written as they are, without caching each sentence's text.
        spelled, spell = self.names.written, self.names.term
        parts = []
        for p in sorted(preds):
            verb = "a" if p == TYPE else spelled.get(p) or spell(p)
            objs = preds[p]
            if len(objs) == 1:
                for o in objs:
                    line = f"{verb} {o if o[-1] != '>' else spelled.get(o) or spell(o)}"
            else:
                words = [o if o[-1] != ">" else spelled.get(o) or spell(o) for o in sorted(objs)]
                line = f"{verb} " + ", ".join(words)
                if len(line) > 90:  # one object a line, as people write it
                    line = f"{verb} " + ",\n        ".join(words)
            if p == TYPE:
                parts.insert(0, line)
            else:
                parts.append(line)
        head = spelled.get(subject) or spell(subject)
        return (head + " " + " ;\n    ".join(parts) + " .\n").encode("utf-8")

    def finish(self, texts: list[bytes]) -> bytes:
        return self.names.header(self.prefixes) + b"\n".join(texts)


class TriG(Turtle):
    """Each named graph as ``<name> { … }`` (full IRIs for names: old TriG parsers want them)."""

    named = True

    def graph(self, name: str | None, texts: list[bytes]) -> bytes:
        head = "{\n" if name is None else f"{name} {{\n"
        return head.encode("utf-8") + b"\n".join(texts) + b"}\n"


def turtle(triples: Iterable[Triple | NtTriple], prefixes: Mapping[str, str]) -> bytes:
    return write(Turtle(prefixes), triples)


def trig(named: Mapping[Term | str | None, Iterable[Triple]], prefixes: Mapping[str, str]) -> bytes:
    return write_named(TriG(prefixes), named)


# --------------------------------------------------------------------------- RDF/XML


def _xml_ok(text: str) -> str:
    if _NOT_XML.search(text):
        raise ValueError(f"RDF/XML cannot carry a character of this literal (XML 1.0): {text!r}")
    return text


def _xml_text(text: str) -> str:
    return escape(_xml_ok(text), {"\r": "&#13;"})  # a raw CR would be read as a newline


def _xml_attr(text: str) -> str:
    return quoteattr(_xml_ok(text), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


class RdfXml(Layout):
    """Striped RDF/XML, one ``rdf:Description`` per subject, sorted; no typed-node shortcuts.

    Property namespaces without a prefix get ns1, ns2, … in sorted order; ``predicates``
    must therefore name every property the document will hold (the pipeline's all have
    prefixes, so it passes none).
    """

    key = staticmethod(_ontology_first)

    def __init__(self, prefixes: Mapping[str, str], predicates: Iterable[str] = ()) -> None:
        super().__init__()
        self.known = {**prefixes, "rdf": str(RDF)}
        self.names = _Names(self.known, self.used)
        self.extra: dict[str, str] = {}  # namespace -> ns1, ns2, …
        for p in sorted({value_of(p) for p in predicates}):
            if self.names.qname(p) is None:
                m = re.fullmatch(r"(.*[/#])([A-Za-z_][A-Za-z0-9_.-]*)", p)
                if m is None:
                    raise ValueError(f"RDF/XML cannot write the property {p} (no XML name for it)")
                self.extra.setdefault(m.group(1), f"ns{len(self.extra) + 1}")

    def element(self, p: str) -> str:
        if p in _NOT_PROPERTY:
            raise ValueError(f"RDF/XML cannot use {p} as a property")
        q = self.names.qname(check_iri(p))
        if q is not None:
            self.used.add(q[0])
            return f"{q[0]}:{q[1]}"
        m = re.fullmatch(r"(.*[/#])(.*)", p)
        if m is None or m.group(1) not in self.extra:
            raise ValueError(f"RDF/XML cannot write the property {p} (no XML name for it)")
        return f"{self.extra[m.group(1)]}:{m.group(2)}"

    def block(self, subject: str, preds: Preds, graph: str | None) -> bytes:
        if subject[0] == "<":
            ident = f"rdf:about={_xml_attr(check_iri(subject[1:-1]))}"
        else:
            ident = f'rdf:nodeID="{_bnode_label(subject[2:])}"'
        body = [f"  <rdf:Description {ident}>\n"]
        for p in sorted(preds, key=lambda p: (p != TYPE, p)):
            tag = self.element(p[1:-1])
            for o in sorted(preds[p]):
                if o[0] == "<":
                    body.append(f"    <{tag} rdf:resource={_xml_attr(check_iri(o[1:-1]))}/>\n")
                elif o[0] == "_":
                    body.append(f'    <{tag} rdf:nodeID="{_bnode_label(o[2:])}"/>\n')
                else:
                    lex, lang, dtype = literal_parts(o)
                    attr = ""
                    if lang:
                        attr = f" xml:lang={_xml_attr(lang)}"
                    elif dtype is not None:
                        attr = f" rdf:datatype={_xml_attr(check_iri(dtype))}"
                    body.append(f"    <{tag}{attr}>{_xml_text(lex)}</{tag}>\n")
        body.append("  </rdf:Description>\n")
        return "".join(body).encode("utf-8")

    def finish(self, texts: list[bytes]) -> bytes:
        declared = {p: self.known[p] for p in self.used | {"rdf"}}
        declared |= {v: k for k, v in self.extra.items()}
        head = "".join(f"\n    xmlns:{p}={_xml_attr(ns)}" for p, ns in sorted(declared.items()))
        start = f'<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF{head}>\n'.encode()
        return start + b"".join(texts) + b"</rdf:RDF>\n"


def rdfxml(triples: Iterable[Triple | NtTriple], prefixes: Mapping[str, str]) -> bytes:
    triples = list(nt_triples(triples))
    return write(RdfXml(prefixes, {p for _, p, _ in triples}), triples)


# --------------------------------------------------------------------------- JSON-LD


class _Compactor:
    """Compacts IRIs and values against a JSON-LD context of simple and expanded terms.

    Only unambiguous forms are produced: a term is used for a property only when every
    value fits its definition (type coercion, language container), otherwise the
    property's compact IRI with explicit value objects.  ``@id`` values are never bare
    terms (IRI expansion of ``@id`` does not use terms), and compact IRIs are only made
    with prefixes whose expansion round-trips.
    """

    def __init__(self, context: Mapping[str, object]) -> None:
        self.prefixes: list[tuple[str, str]] = []
        self.terms: dict[str, tuple[str, dict]] = {}  # absolute IRI -> (term, definition)
        for name, value in context.items():
            if name.startswith("@"):
                continue
            if isinstance(value, str) and value.endswith(("/", "#")) and ":" not in name:
                self.prefixes.append((name, value))
        self.prefixes.sort(key=lambda kv: (-len(kv[1]), kv[0]))
        for name, value in sorted(context.items()):
            if name.startswith("@") or ":" in name:
                continue
            definition = {"@id": value} if isinstance(value, str) else dict(value)
            iri = self.expand(definition["@id"])
            if iri.endswith(("/", "#")):
                continue  # a prefix, not a term
            definition["@type"] = (
                self.expand(definition["@type"])
                if definition.get("@type") not in (None, "@id")
                else definition.get("@type")
            )
            self.terms.setdefault(iri, (name, definition))

    def expand(self, value: str) -> str:
        prefix, _, rest = value.partition(":")
        for p, ns in self.prefixes:
            if p == prefix and not rest.startswith("//"):
                return ns + rest
        return value

    def iri(self, iri: str) -> str:
        """A compact IRI (prefix:suffix) or the absolute IRI; never a bare term."""
        check_iri(iri)
        scheme = iri.split(":", 1)[0]
        if any(p == scheme for p, _ in self.prefixes):
            raise ValueError(f"IRI {iri!r} would read as a compact IRI in this context")
        for p, ns in self.prefixes:
            rest = iri[len(ns) :]
            if iri.startswith(ns) and rest and not rest.startswith("//"):
                return f"{p}:{rest}"
        return iri

    def vocab(self, iri: str) -> str:
        """For keys and ``@type`` values: a plain term if one maps exactly this IRI."""
        term = self.terms.get(iri)
        if term is not None and set(term[1]) == {"@id", "@type"} and term[1]["@type"] is None:
            return term[0]
        return self.iri(iri)

    def node_ref(self, node: str) -> str:
        return f"_:{_bnode_label(node[2:])}" if node[0] == "_" else self.iri(node[1:-1])

    def value(self, o: str) -> object:
        if o[0] != '"':
            return {"@id": self.node_ref(o)}
        lex, lang, dtype = literal_parts(o)
        if lang:
            return {"@language": lang, "@value": lex}
        if dtype is None:
            return lex
        return {"@type": self.vocab(dtype), "@value": lex}

    def property(self, p: str, objects: list[str]) -> tuple[str, object]:
        """The key and the compacted values of one property of one node."""
        found = self.terms.get(p[1:-1])
        if found is not None:
            name, d = found
            kind, container = d.get("@type"), d.get("@container")
            literals = [literal_parts(o) if o[0] == '"' else None for o in objects]
            if container == "@language":
                if all(lit is not None and lit[1] for lit in literals):
                    langs: dict[str, list[str]] = {}
                    for lex, lang, _ in literals:  # type: ignore[misc]
                        langs.setdefault(lang, []).append(lex)
                    return name, {k: _one(v) for k, v in sorted(langs.items())}
            elif container is None and kind == "@id":
                if all(lit is None for lit in literals):
                    return name, _one([self.node_ref(o) for o in objects])
            elif container is None and kind is not None:
                if all(lit is not None and lit[2] == kind for lit in literals):
                    return name, _one([lit[0] for lit in literals])  # type: ignore[index]
            elif container is None and set(d) == {"@id", "@type"}:
                return name, _one([self.value(o) for o in objects])
        return self.iri(p[1:-1]), _one([self.value(o) for o in objects])


def _one(values: list) -> object:
    return values[0] if len(values) == 1 else values


class JsonLd(Layout):
    """Compacted JSON-LD: the context embedded, one node object per subject in ``@graph``.

    The bytes are those of ``json.dumps(doc, indent=1, sort_keys=True)`` of the whole
    document; each node is dumped alone and indented to its depth in ``@graph``.
    """

    key = staticmethod(_ontology_first)

    def __init__(self, context: Mapping[str, object]) -> None:
        super().__init__()
        self.context = context
        self.compactor = _Compactor(context)

    def block(self, subject: str, preds: Preds, graph: str | None) -> bytes:
        c = self.compactor
        node: dict[str, object] = {"@id": c.node_ref(subject)}
        props = dict(preds)
        types = sorted(props.pop(TYPE, ()))
        if types and all(t[0] == "<" for t in types):
            node["@type"] = _one([c.vocab(value_of(t)) for t in types])
        elif types:
            props[TYPE] = set(types)  # a literal type: keep it as a plain property
        for p in sorted(props):
            key, value = c.property(p, sorted(props[p]))
            if key in node:
                raise ValueError(f"two properties of {subject} compact to {key!r}")
            node[key] = value
        text = json.dumps(node, ensure_ascii=False, indent=1, sort_keys=True)
        return ("  " + text.replace("\n", "\n  ")).encode("utf-8")  # depth 2: doc, @graph

    def finish(self, texts: list[bytes]) -> bytes:
        head = json.dumps({"@context": dict(self.context)}, ensure_ascii=False, indent=1,
                          sort_keys=True)  # fmt: skip
        head = head[: -len("\n}")]  # "@graph" sorts after "@context": it goes last
        if not texts:
            return (head + ',\n "@graph": []\n}\n').encode("utf-8")
        nodes = b",\n".join(texts)
        return (head + ',\n "@graph": [\n').encode("utf-8") + nodes + b"\n ]\n}\n"


def jsonld(triples: Iterable[Triple | NtTriple], context: Mapping[str, object]) -> bytes:
    return write(JsonLd(context), triples)


# --------------------------------------------------------------------------- literals


def canonical_decimal(value: Decimal | str | float) -> Literal:
    """An xsd:decimal in its XSD 1.1 canonical form (``12000``, ``0.8``, ``1``).

    Stores such as Oxigraph keep decimals as values and give back the canonical form;
    writing it in the first place keeps every dump and every store byte-for-byte equal.
    """
    d = Decimal(str(value))
    text = format(d.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return Literal(text, datatype=XSD.decimal)
