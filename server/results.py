"""Serialise query results (SPARQL 1.1 JSON/XML/CSV/TSV, RDF formats)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

PREFIXES = {
    "jc": "https://w3id.org/jiceng/ontology#",
    "res": "https://w3id.org/jiceng/resource/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "prov": "http://www.w3.org/ns/prov#",
    "dcterms": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "owl": "http://www.w3.org/2002/07/owl#",
}

RDF_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "jsonld": ox.RdfFormat.JSON_LD,
    "rdfxml": ox.RdfFormat.RDF_XML,
}

Row = Sequence[Term | None]


def term_json(term: Term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": str(term)}


def term_text(term: Term | None) -> str:
    """Plain value, as in SPARQL CSV results."""
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return "_:" + term.value
    return getattr(term, "value", str(term))


def solutions_json(variables: list[str], rows: list[Row], truncated: bool) -> bytes:
    cache: dict[Term, dict[str, str]] = {}  # labels and types repeat a lot

    def enc(t: Term) -> dict[str, str]:
        d = cache.get(t)
        if d is None:
            d = cache[t] = term_json(t)
        return d

    bindings = [
        {v: enc(t) for v, t in zip(variables, row, strict=True) if t is not None} for row in rows
    ]
    doc: dict[str, object] = {"head": {"vars": variables}, "results": {"bindings": bindings}}
    if truncated:
        doc["truncated"] = True  # extension: ignored by SPARQL clients
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def boolean_json(value: bool) -> bytes:
    return json.dumps({"head": {}, "boolean": value}).encode()


def _xml_term(t: Term) -> str:
    if isinstance(t, ox.NamedNode):
        return f"<uri>{escape(t.value)}</uri>"
    if isinstance(t, ox.BlankNode):
        return f"<bnode>{escape(t.value)}</bnode>"
    if isinstance(t, ox.Literal):
        if t.language:
            return f"<literal xml:lang={quoteattr(t.language)}>{escape(t.value)}</literal>"
        if t.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(t.datatype.value)}>{escape(t.value)}</literal>"
        return f"<literal>{escape(t.value)}</literal>"
    return f"<literal>{escape(str(t))}</literal>"


_XML_HEAD = '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n'


def solutions_xml(variables: list[str], rows: list[Row]) -> bytes:
    parts = [_XML_HEAD, "<head>"]
    parts += [f"<variable name={quoteattr(v)}/>" for v in variables]
    parts.append("</head>\n<results>\n")
    for row in rows:
        parts.append("<result>")
        for v, t in zip(variables, row, strict=True):
            if t is not None:
                parts.append(f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>")
        parts.append("</result>\n")
    parts.append("</results>\n</sparql>\n")
    return "".join(parts).encode()


def boolean_xml(value: bool) -> bytes:
    return (_XML_HEAD + f"<head/><boolean>{str(value).lower()}</boolean>\n</sparql>\n").encode()


def solutions_csv(variables: list[str], rows: list[Row]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180, as the SPARQL CSV spec says
    w.writerow(variables)
    w.writerows([term_text(t) for t in row] for row in rows)
    return buf.getvalue().encode()


def _tsv_term(t: Term | None) -> str:
    if t is None:
        return ""
    return str(t)  # N-Triples/Turtle syntax: tabs and newlines are escaped


def solutions_tsv(variables: list[str], rows: list[Row]) -> bytes:
    lines = ["\t".join("?" + v for v in variables)]
    lines += ["\t".join(_tsv_term(t) for t in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def solutions(fmt: str, variables: list[str], rows: list[Row], truncated: bool = False) -> bytes:
    if fmt == "json":
        return solutions_json(variables, rows, truncated)
    if fmt == "xml":
        return solutions_xml(variables, rows)
    if fmt == "csv":
        return solutions_csv(variables, rows)
    if fmt == "tsv":
        return solutions_tsv(variables, rows)
    raise ValueError(fmt)


def boolean(fmt: str, value: bool) -> bytes:
    if fmt == "json":
        return boolean_json(value)
    if fmt == "xml":
        return boolean_xml(value)
    return (str(value).lower() + "\n").encode()  # csv/tsv: as Oxigraph server does


def triples(fmt: str, items: list[ox.Triple]) -> bytes:
    rdf_format = RDF_FORMATS[fmt]
    if fmt in ("turtle", "rdfxml"):
        return ox.serialize(items, format=rdf_format, prefixes=PREFIXES)
    return ox.serialize(items, format=rdf_format)
