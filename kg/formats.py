"""Deterministic writers for RDF syntaxes: N-Triples, N-Quads, Turtle, TriG, RDF/XML, JSON-LD.

rdflib's serialisers follow the store's iteration order (hash-seeded sets for named graphs,
unsorted subjects in RDF/XML and JSON-LD), so the same graph can come out in a different
order from one run to the next.  These writers sort everything, so the bytes depend only
on the triples, and keep to the conservative core of each syntax (prefixed names only for
plain local names, full IRIs for graph names, no RDF/XML abbreviations) so that older
parsers read them too.  Blank nodes are written with the labels they have: callers that
need stable output must give them stable labels (``stable_bnodes``).
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from rdflib import OWL, RDF, XSD, BNode, Graph, Literal, URIRef
from rdflib.compare import to_canonical_graph

Term = URIRef | BNode | Literal
Triple = tuple[Term, Term, Term]

# Characters an IRI may not contain (RFC 3987 and the IRIREF production of N-Triples/Turtle).
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')
# Conservative prefixed-name local part: valid in Turtle 1.0 and 1.1 and as an XML NCName, no
# escapes, no leading digit (older Turtle parsers reject it), no dots.
_SAFE_LOCAL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Characters XML 1.0 cannot carry at all (RDF/XML must refuse such literals).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ECHAR = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# RDF/XML names that may not be property elements (RDF/XML grammar, section 7.2.5).
_NOT_PROPERTY = {
    URIRef(str(RDF) + n)
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
    out = re.sub(r'[\\"\n\r\t]', lambda m: _ECHAR[m.group()], text)
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04X}", out) + '"'


def _datatype(lit: Literal) -> URIRef | None:
    """The datatype to write: none for plain and xsd:string literals (the same in RDF 1.1)."""
    return None if lit.language or lit.datatype in (None, XSD.string) else lit.datatype


@functools.lru_cache(maxsize=1 << 20)  # the same IRIs recur in thousands of triples
def nt_term(term: Term) -> str:
    """A term in N-Triples syntax (also valid Turtle, TriG and N-Quads)."""
    if isinstance(term, URIRef):
        return f"<{check_iri(str(term))}>"
    if isinstance(term, BNode):
        return f"_:{_bnode_label(term)}"
    text = _string(str(term))
    if term.language:
        return f"{text}@{term.language}"
    dtype = _datatype(term)
    return f"{text}^^<{check_iri(str(dtype))}>" if dtype else text


def _bnode_label(node: BNode) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(node)):
        raise ValueError(f"blank node label {str(node)!r} is not portable")
    return str(node)


def _key(triple: Triple) -> tuple[str, str, str]:
    return nt_term(triple[0]), nt_term(triple[1]), nt_term(triple[2])


def _subjects(by_subject: Mapping[Term, Mapping[Term, object]]) -> list[Term]:
    """Subjects in output order: ontology headers first (as OWL tools expect), then sorted."""

    def key(s: Term) -> tuple[bool, str]:
        types = by_subject[s].get(RDF.type, ())
        return (OWL.Ontology not in types, nt_term(s))  # type: ignore[operator]

    return sorted(by_subject, key=key)


def stable_bnodes(graph: Graph) -> Graph:
    """A copy whose blank nodes are labelled from their content (b0, b1, … in hash order)."""
    canonical = to_canonical_graph(graph)
    labels = sorted({n for t in canonical for n in t if isinstance(n, BNode)}, key=str)
    rename = {old: BNode(f"b{i}") for i, old in enumerate(labels)}
    out = Graph()
    for t in canonical:
        out.add(tuple(rename.get(n, n) for n in t))  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------- line formats


def ntriples(triples: Iterable[Triple]) -> bytes:
    lines = sorted({" ".join(_key(t)) + " .\n" for t in triples})
    return "".join(lines).encode("utf-8")


def nquads(named: Mapping[URIRef, Iterable[Triple]]) -> bytes:
    """One named graph after another (sorted by name), each graph's lines sorted."""
    out: list[str] = []
    for name in sorted(named, key=str):
        g = nt_term(name)
        out += sorted({" ".join(_key(t)) + f" {g} .\n" for t in named[name]})
    return "".join(out).encode("utf-8")


# --------------------------------------------------------------------------- Turtle, TriG


class _Names:
    """Prefixed names where they are safe; records which prefixes were used."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        # longest namespace first, so jc: wins over a shorter namespace that also matches
        self.prefixes = sorted(prefixes.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        self.used: set[str] = set()
        self._written: dict[Term, str] = {}  # each term is spelled once, then looked up

    def qname(self, iri: str) -> tuple[str, str] | None:
        for prefix, ns in self.prefixes:
            if iri.startswith(ns) and _SAFE_LOCAL.fullmatch(iri[len(ns) :]):
                return prefix, iri[len(ns) :]
        return None

    def iri(self, iri: URIRef) -> str:
        q = self.qname(check_iri(str(iri)))
        if q is None:
            return f"<{iri}>"
        self.used.add(q[0])
        return f"{q[0]}:{q[1]}"

    def term(self, term: Term) -> str:
        written = self._written.get(term)
        if written is None:
            written = self._written[term] = self._term(term)
        return written

    def _term(self, term: Term) -> str:
        if isinstance(term, URIRef):
            return self.iri(term)
        if isinstance(term, Literal) and not term.language:
            dtype, lex = _datatype(term), str(term)
            if dtype == XSD.integer and re.fullmatch(r"[+-]?[0-9]+", lex):
                return lex
            if dtype == XSD.decimal and re.fullmatch(r"[+-]?[0-9]*\.[0-9]+", lex):
                return lex
            if dtype == XSD.boolean and lex in ("true", "false"):
                return lex
            if dtype is not None:
                return f"{_string(lex)}^^{self.iri(dtype)}"
        return nt_term(term)

    def header(self, prefixes: Mapping[str, str]) -> str:
        lines = [f"@prefix {p}: <{prefixes[p]}> ." for p in sorted(self.used)]
        return "\n".join(lines) + "\n\n" if lines else ""


def _blocks(triples: Iterable[Triple], names: _Names) -> list[str]:
    """One Turtle block per subject: rdf:type first, then predicates and objects sorted."""
    by_subject: dict[Term, dict[Term, set[Term]]] = defaultdict(lambda: defaultdict(set))
    for s, p, o in triples:
        by_subject[s][p].add(o)
    blocks = []
    for s in _subjects(by_subject):
        preds = sorted(by_subject[s], key=lambda p: (p != RDF.type, nt_term(p)))
        parts = []
        for p in preds:
            verb = "a" if p == RDF.type else names.term(p)
            objs = [names.term(o) for o in sorted(by_subject[s][p], key=nt_term)]
            line = f"{verb} " + ", ".join(objs)
            if len(line) > 90 and len(objs) > 1:  # one object a line, as people write it
                line = f"{verb} " + ",\n        ".join(objs)
            parts.append(line)
        subject = names.term(s) if isinstance(s, URIRef) else nt_term(s)
        blocks.append(subject + " " + " ;\n    ".join(parts) + " .\n")
    return blocks


def turtle(triples: Iterable[Triple], prefixes: Mapping[str, str]) -> bytes:
    names = _Names(prefixes)
    body = "\n".join(_blocks(triples, names))
    return (names.header(prefixes) + body).encode("utf-8")


def trig(named: Mapping[URIRef, Iterable[Triple]], prefixes: Mapping[str, str]) -> bytes:
    """Each named graph as ``<name> { … }`` (full IRIs for names: old TriG parsers want them)."""
    names = _Names(prefixes)
    graphs = []
    for name in sorted(named, key=str):
        body = "\n".join(_blocks(named[name], names))
        graphs.append(f"{nt_term(name)} {{\n{body}}}\n")
    return (names.header(prefixes) + "\n".join(graphs)).encode("utf-8")


# --------------------------------------------------------------------------- RDF/XML


def _xml_ok(text: str) -> str:
    if _NOT_XML.search(text):
        raise ValueError(f"RDF/XML cannot carry a character of this literal (XML 1.0): {text!r}")
    return text


def _xml_text(text: str) -> str:
    return escape(_xml_ok(text), {"\r": "&#13;"})  # a raw CR would be read as a newline


def _xml_attr(text: str) -> str:
    return quoteattr(_xml_ok(text), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def rdfxml(triples: Iterable[Triple], prefixes: Mapping[str, str]) -> bytes:
    """Striped RDF/XML, one ``rdf:Description`` per subject, sorted; no typed-node shortcuts."""
    known = {**prefixes, "rdf": str(RDF)}
    names = _Names(known)
    triples = list(triples)
    # Property namespaces with no prefix get ns1, ns2, … in sorted order (stable output).
    extra: dict[str, str] = {}
    for p in sorted({str(p) for _, p, _ in triples}):
        if names.qname(p) is None:
            m = re.fullmatch(r"(.*[/#])([A-Za-z_][A-Za-z0-9_.-]*)", p)
            if m is None:
                raise ValueError(f"RDF/XML cannot write the property {p} (no XML name for it)")
            extra.setdefault(m.group(1), f"ns{len(extra) + 1}")

    def element(p: URIRef) -> str:
        if p in _NOT_PROPERTY:
            raise ValueError(f"RDF/XML cannot use {p} as a property")
        q = names.qname(check_iri(str(p)))
        if q is not None:
            names.used.add(q[0])
            return f"{q[0]}:{q[1]}"
        ns, local = re.fullmatch(r"(.*[/#])(.*)", str(p)).groups()  # type: ignore[union-attr]
        return f"{extra[ns]}:{local}"

    by_subject: dict[Term, dict[Term, set[Term]]] = defaultdict(lambda: defaultdict(set))
    for s, p, o in triples:
        by_subject[s][p].add(o)
    body: list[str] = []
    for s in _subjects(by_subject):
        if isinstance(s, URIRef):
            ident = f"rdf:about={_xml_attr(check_iri(str(s)))}"
        else:
            ident = f'rdf:nodeID="{_bnode_label(s)}"'
        body.append(f"  <rdf:Description {ident}>\n")
        pairs = {(p, o) for p, objs in by_subject[s].items() for o in objs}
        for p, o in sorted(pairs, key=lambda po: (po[0] != RDF.type, _key((s, *po)))):
            tag = element(p)
            if isinstance(o, URIRef):
                body.append(f"    <{tag} rdf:resource={_xml_attr(check_iri(str(o)))}/>\n")
            elif isinstance(o, BNode):
                body.append(f'    <{tag} rdf:nodeID="{_bnode_label(o)}"/>\n')
            else:
                attr = ""
                if o.language:
                    attr = f" xml:lang={_xml_attr(o.language)}"
                elif (dtype := _datatype(o)) is not None:
                    attr = f" rdf:datatype={_xml_attr(check_iri(str(dtype)))}"
                body.append(f"    <{tag}{attr}>{_xml_text(str(o))}</{tag}>\n")
        body.append("  </rdf:Description>\n")
    declared = {p: known[p] for p in names.used | {"rdf"}} | {v: k for k, v in extra.items()}
    head = "".join(f"\n    xmlns:{p}={_xml_attr(ns)}" for p, ns in sorted(declared.items()))
    text = f'<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF{head}>\n{"".join(body)}</rdf:RDF>\n'
    return text.encode("utf-8")


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

    def node_ref(self, node: Term) -> str:
        return f"_:{_bnode_label(node)}" if isinstance(node, BNode) else self.iri(str(node))

    def value(self, o: Term) -> object:
        if not isinstance(o, Literal):
            return {"@id": self.node_ref(o)}
        if o.language:
            return {"@language": o.language, "@value": str(o)}
        dtype = _datatype(o)
        if dtype is None:
            return str(o)
        return {"@type": self.vocab(str(dtype)), "@value": str(o)}

    def property(self, p: URIRef, objects: list[Term]) -> tuple[str, object]:
        """The key and the compacted values of one property of one node."""
        found = self.terms.get(str(p))
        if found is not None:
            name, d = found
            kind, container = d.get("@type"), d.get("@container")
            if container == "@language":
                if all(isinstance(o, Literal) and o.language for o in objects):
                    langs: dict[str, list[str]] = defaultdict(list)
                    for o in objects:
                        langs[o.language].append(str(o))  # type: ignore[union-attr]
                    return name, {k: _one(v) for k, v in sorted(langs.items())}
            elif container is None and kind == "@id":
                if all(not isinstance(o, Literal) for o in objects):
                    return name, _one([self.node_ref(o) for o in objects])
            elif container is None and kind is not None:
                if all(isinstance(o, Literal) and str(_datatype(o)) == kind for o in objects):
                    return name, _one([str(o) for o in objects])
            elif container is None and set(d) == {"@id", "@type"}:
                return name, _one([self.value(o) for o in objects])
        return self.iri(str(p)), _one([self.value(o) for o in objects])


def _one(values: list) -> object:
    return values[0] if len(values) == 1 else values


def jsonld(triples: Iterable[Triple], context: Mapping[str, object]) -> bytes:
    """Compacted JSON-LD: the context embedded, one node object per subject in ``@graph``."""
    c = _Compactor(context)
    by_subject: dict[Term, dict[Term, set[Term]]] = defaultdict(lambda: defaultdict(set))
    for s, p, o in triples:
        by_subject[s][p].add(o)
    nodes = []
    for s in _subjects(by_subject):
        node: dict[str, object] = {"@id": c.node_ref(s)}
        props = by_subject[s]
        types = sorted(props.pop(RDF.type, set()), key=nt_term)
        if types and all(isinstance(t, URIRef) for t in types):
            node["@type"] = _one([c.vocab(str(t)) for t in types])
        elif types:
            props[RDF.type] = set(types)  # a literal type: keep it as a plain property
        for p in sorted(props, key=nt_term):
            key, value = c.property(p, sorted(props[p], key=nt_term))
            if key in node:
                raise ValueError(f"two properties of {s} compact to {key!r}")
            node[key] = value
        nodes.append(node)
    doc = {"@context": dict(context), "@graph": nodes}
    return (json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")


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
