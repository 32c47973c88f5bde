"""The work a query worker does: run one job against a store, return a plain dict.

Jobs and replies are plain picklable dicts so the same code runs in a worker process
(server) or in-process (offline runner, start-up statistics).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import pyoxigraph as ox

from server import conneg, results

Job = dict[str, Any]
Reply = dict[str, Any]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dataset(job: Job) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    dg, ng = job.get("default_graph"), job.get("named_graphs")
    if dg is None and ng is None:
        return kwargs
    # Protocol: when either is given, the dataset is exactly what was given.
    kwargs["default_graph"] = [ox.NamedNode(i) for i in dg or []]
    kwargs["named_graphs"] = [ox.NamedNode(i) for i in ng or []]
    return kwargs


def _run(store: ox.Store, job: Job) -> Any:
    return store.query(job["query"], **_dataset(job))


def run_query(store: ox.Store, job: Job) -> Reply:
    """A protocol query: negotiate the format from the result kind, serialise with a row cap."""
    try:
        result = _run(store, job)
    except SyntaxError as exc:
        return {"status": 400, "error": f"malformed SPARQL: {_first_line(exc)}"}
    except ValueError as exc:  # bad graph IRI in the dataset
        return {"status": 400, "error": _first_line(exc)}
    return answer(result, job)


def answer(result: Any, job: Job) -> Reply:
    """Serialise a query result in the negotiated format, cut to the row limit.

    ``result`` is what pyoxigraph's ``Store.query`` or ``parse_query_results`` returns,
    or an iterable of triples: the embedded and the remote backend share this code,
    so clients get the same bytes whichever store answered.
    """
    max_rows = job.get("max_rows", 10000)
    if isinstance(result, ox.QueryBoolean | ox.QuerySolutions):
        fmt = conneg.choose(job.get("format"), job.get("accept"), conneg.RESULTS)
        if fmt is None:
            return _not_acceptable(conneg.RESULTS)
        if isinstance(result, ox.QueryBoolean):
            return _ok(fmt, conneg.RESULTS, results.boolean(fmt, bool(result)), False)
        variables = [v.value for v in result.variables]
        rows = [tuple(sol) for sol in islice(result, max_rows + 1)]
        truncated = len(rows) > max_rows
        body = results.solutions(fmt, variables, rows[:max_rows], truncated)
        return _ok(fmt, conneg.RESULTS, body, truncated)
    fmt = conneg.choose(job.get("format"), job.get("accept"), conneg.GRAPH)
    if fmt is None:
        return _not_acceptable(conneg.GRAPH)
    triples = list(islice(result, max_rows + 1))
    truncated = len(triples) > max_rows
    return _ok(fmt, conneg.GRAPH, results.triples(fmt, triples[:max_rows]), truncated)


def _ok(fmt: str, table: dict[str, str], body: bytes, truncated: bool) -> Reply:
    return {
        "status": 200,
        "format": fmt,
        "media_type": table[fmt],
        "body": body,
        "truncated": truncated,
    }


def _not_acceptable(table: dict[str, str]) -> Reply:
    offered = ", ".join(table.values())
    return {"status": 406, "error": f"cannot produce the requested format; available: {offered}"}


def run_rows(store: ox.Store, job: Job) -> Reply:
    """A SELECT whose solutions come back as pyoxigraph terms (for pages and indexes)."""
    try:
        result = _run(store, job)
    except SyntaxError as exc:
        return {"status": 400, "error": f"malformed SPARQL: {_first_line(exc)}"}
    return solutions(result, job)


def solutions(result: Any, job: Job) -> Reply:
    """SELECT solutions as pyoxigraph terms, cut to the row limit (shared with remote)."""
    if not isinstance(result, ox.QuerySolutions):
        return {"status": 400, "error": "expected a SELECT query"}
    max_rows = job.get("max_rows", 10000)
    variables = [v.value for v in result.variables]
    rows = [tuple(sol) for sol in islice(result, max_rows + 1)]
    return {
        "status": 200,
        "vars": variables,
        "rows": rows[:max_rows],
        "truncated": len(rows) > max_rows,
    }


def run_dump(store: ox.Store, job: Job) -> Reply:
    fmt = job["format"]
    rdf_format = results.RDF_FORMATS[fmt]
    kwargs: dict[str, Any] = {"format": rdf_format, "from_graph": ox.DefaultGraph()}
    if fmt == "turtle":
        kwargs["prefixes"] = results.PREFIXES
    return {"status": 200, "body": store.dump(**kwargs)}


def run_update(store: ox.Store, job: Job) -> Reply:
    try:
        store.update(job["update"])
    except SyntaxError as exc:
        return {"status": 400, "error": f"malformed SPARQL update: {_first_line(exc)}"}
    except (ValueError, OSError) as exc:
        return {"status": 400, "error": f"update failed: {_first_line(exc)}"}
    if hasattr(store, "flush"):
        try:
            store.flush()
        except OSError:
            pass  # in-memory stores have nothing to flush
    return {"status": 200}


def run_check(store: ox.Store, job: Job) -> Reply:
    """Parse, but do not answer, a query or update (``store`` is empty: the remote backend's).

    The remote backend forwards only what the embedded store would accept, with the
    same 400 messages; non-standard extensions (Virtuoso's DEFINE pragmas, for one)
    never reach the remote store.  Queries are not iterated, so nothing is evaluated
    except an ASK's pattern, over no data, under the worker's time limit.
    """
    if "update" in job:
        try:
            ox.Store().update(job["update"])  # a fresh empty store each time: no state builds up
        except SyntaxError as exc:
            return {"status": 400, "error": f"malformed SPARQL update: {_first_line(exc)}"}
        except (ValueError, OSError):
            pass  # parsed fine; failing on an empty store says nothing about the remote
        return {"status": 200}
    try:
        _run(store, job)
    except SyntaxError as exc:
        return {"status": 400, "error": f"malformed SPARQL: {_first_line(exc)}"}
    except ValueError as exc:  # bad graph IRI in the dataset
        return {"status": 400, "error": _first_line(exc)}
    return {"status": 200}


HANDLERS = {
    "query": run_query,
    "rows": run_rows,
    "dump": run_dump,
    "update": run_update,
    "check": run_check,
}


def execute(store: ox.Store, job: Job) -> Reply:
    try:
        return HANDLERS[job["kind"]](store, job)
    except OSError as exc:
        return {"status": 500, "error": f"store error: {_first_line(exc)}"}
