"""Run SPARQL against a dump file without a server (used by ``jiceng query`` and ``stats``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyoxigraph as ox

_FORMATS = {
    ".ttl": ox.RdfFormat.TURTLE,
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS,
    ".trig": ox.RdfFormat.TRIG,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".rdf": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML,
    ".xml": ox.RdfFormat.RDF_XML,
}


class QueryError(Exception):
    """A one-line, user-facing error (bad dump, bad query)."""


def load_store(path: Path) -> ox.Store:
    """Load a dump into an in-memory store; quads land in their named graphs."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise QueryError(f"{path}: unknown RDF format (use .ttl, .nt, .nq, .trig, .jsonld, .rdf)")
    if not path.is_file():
        raise QueryError(f"{path}: no such file")
    store = ox.Store()
    try:
        store.bulk_load(path=str(path), format=fmt)
    except (SyntaxError, ValueError, OSError) as exc:
        raise QueryError(f"{path}: cannot parse: {exc}") from None
    union_into_default(store)
    return store


def union_into_default(store: ox.Store) -> None:
    """A TriG/N-Quads dump keeps each article in its own graph; queries (and the canned
    ones) read the default graph, so it gets the union.  Called before the ontology is
    loaded, so the ontology's graph stays out of it.  A no-op for triple dumps."""
    store.update("INSERT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }")


def _term_text(term: ox.Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.Literal):
        return term.value
    if isinstance(term, ox.NamedNode):
        return term.value
    return str(term)


def _term_json(term: ox.Term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    out = {"type": "literal", "value": term.value}
    if term.language:
        out["xml:lang"] = term.language
    elif term.datatype and term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
        out["datatype"] = term.datatype.value
    return out


def format_solutions(variables: list[str], rows: list[list[ox.Term | None]], fmt: str) -> str:
    """Render SELECT results as csv, tsv, json (SPARQL 1.1 JSON results) or a text table."""
    if fmt == "json":
        bindings = [
            {v: _term_json(t) for v, t in zip(variables, row, strict=True) if t is not None}
            for row in rows
        ]
        doc = {"head": {"vars": variables}, "results": {"bindings": bindings}}
        return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    texts = [[_term_text(t) for t in row] for row in rows]
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(variables)
        writer.writerows(texts)
        return buf.getvalue()
    if fmt == "table":
        widths = [max([_width(v)] + [_width(r[i]) for r in texts]) for i, v in enumerate(variables)]
        lines = [" | ".join(_pad(v, w) for v, w in zip(variables, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [" | ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)) for r in texts]
        return "\n".join(lines) + "\n"
    raise QueryError(f"unknown output format {fmt!r} (use csv, tsv, json or table)")


def _width(s: str) -> int:
    # CJK characters take two terminal cells.
    return sum(2 if ord(c) > 0x2E80 else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


def run_query(store: ox.Store, query: str, fmt: str = "table") -> str:
    """Run any SPARQL query; SELECT/ASK are formatted, CONSTRUCT/DESCRIBE give N-Triples."""
    try:
        result = store.query(query)
    except SyntaxError as exc:
        raise QueryError(f"malformed SPARQL: {exc}") from None
    if isinstance(result, ox.QueryBoolean):
        return format_solutions(["ask"], [[ox.Literal(str(bool(result)).lower())]], fmt)
    if isinstance(result, ox.QuerySolutions):
        variables = [v.value for v in result.variables]
        rows = [[sol[v] for v in variables] for sol in result]
        return format_solutions(variables, rows, fmt)
    return "".join(f"{t.subject} {t.predicate} {t.object} .\n" for t in result)


def run_canned(store: ox.Store, name: str, params: dict[str, str], fmt: str) -> str:
    """Run ``queries/{name}.rq`` with ``params`` bound exactly as the server does.

    ``fmt`` is csv, tsv, json or table.  Unknown query or parameter, a name that
    matches nothing or several entities → QueryError with a one-line message.
    """
    from server import canned, jobs  # local: keeps ``jiceng query`` start-up light

    queries = canned.load_all()
    cq = queries.get(name)
    if cq is None:
        raise QueryError(f"no canned query {name!r} (have: {', '.join(sorted(queries))})")
    index = canned.NameIndex(
        jobs.run_rows(store, {"query": canned.INDEX_QUERY, "max_rows": 10**9})["rows"]
    )
    try:
        text = canned.prepare(cq, params, index)
    except canned.Ambiguous as exc:
        options = "; ".join(f"{c.label or c.iri} ({c.type}) <{c.iri}>" for c in exc.candidates[:10])
        raise QueryError(f"{exc.message}: {options}") from None
    except canned.CannedError as exc:
        raise QueryError(exc.message) from None
    reply = jobs.run_rows(store, {"query": text, "max_rows": 10**9})
    if reply["status"] != 200:
        raise QueryError(reply["error"])
    return format_solutions(reply["vars"], reply["rows"], fmt)
