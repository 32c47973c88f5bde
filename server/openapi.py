"""The OpenAPI document: what each route really takes and answers.

FastAPI sees ``/sparql`` as taking a bare ``Request`` and documents every route as
answering JSON or a 422 it never sends (validation errors are 400 text here).  This
module rewrites the generated document so that it lists the parameters, request bodies,
status codes and media types the handlers actually use; ``tests/test_schemathesis.py``
holds the server to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from server import conneg

TEXT = "text/plain"
HTML = "text/html"

_TERM = {
    "type": "object",
    "required": ["type", "value"],
    "properties": {
        "type": {"enum": ["uri", "literal", "bnode", "triple"]},
        "value": {"type": ["string", "object"]},
        "xml:lang": {"type": "string"},
        "datatype": {"type": "string"},
    },
}
SPARQL_JSON = {  # SPARQL 1.1 Query Results JSON, plus our "truncated" flag
    "type": "object",
    "required": ["head"],
    "properties": {
        "head": {
            "type": "object",
            "properties": {
                "vars": {"type": "array", "items": {"type": "string"}},
                "link": {"type": "array", "items": {"type": "string"}},
            },
        },
        "results": {
            "type": "object",
            "required": ["bindings"],
            "properties": {
                "bindings": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": _TERM},
                }
            },
        },
        "boolean": {"type": "boolean"},
        "truncated": {"type": "boolean", "description": "the row limit cut the result"},
    },
}
JSON_LD = {"type": ["object", "array"]}
AMBIGUOUS = {
    "type": "object",
    "required": ["error", "candidates"],
    "properties": {
        "error": {"const": "ambiguous"},
        "message": {"type": "string"},
        "param": {"type": "string"},
        "value": {"type": "string"},
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["iri", "label", "type"],
                "properties": {
                    "iri": {"type": "string"},
                    "label": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
QUERY_LIST = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "params", "url", "sparql"],
        "properties": {
            "name": {"type": "string"},
            "summary": {"type": "string"},
            "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "columns": {"type": "array", "items": {"type": "string"}},
            "params": {"type": "array", "items": {"type": "object"}},
            "url": {"type": "string"},
            "sparql": {"type": "string"},
        },
    },
}


def _schema_for(media: str) -> dict[str, Any]:
    if media in ("application/sparql-results+json", "application/json"):
        return SPARQL_JSON
    if media == "application/ld+json":
        return JSON_LD
    return {"type": "string"}


def content(*media: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {m: {"schema": schema if schema is not None else _schema_for(m)} for m in media}


def _error(description: str, *media: str) -> dict[str, Any]:
    return {"description": description, "content": content(*(media or (TEXT,)))}


RESULTS = tuple(conneg.RESULTS.values())
GRAPHS = tuple(conneg.GRAPH.values())
BAD_REQUEST = _error("bad request: malformed SPARQL or parameter, with the message")
NOT_ACCEPTABLE = _error("no format the client accepts; the message lists the available ones")
TOO_LONG = _error("query or request body over the length limit")
BUSY = _error("time limit exceeded, or every query worker busy (Retry-After: 1)")
NOT_MODIFIED = {"description": "not modified (If-None-Match matched the ETag)"}

# "" is allowed wherever format= is: an empty form field means "by Accept".
_FORMAT_NAMES = ["", *conneg.RESULTS, *conneg.GRAPH, *conneg.FORMAT_ALIASES]


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


# As with format=, an empty timeout= (a blank form field) means the server's limit.
TIMEOUT_SCHEMA = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"const": ""}]}
IRI = {"type": "string", "format": "iri"}
TIMEOUT_DOC = "seconds; lowers the server's time limit (values under 1 s count as 1 s)"
SPARQL_PARAMS = [
    _query_param(
        "query", "a SPARQL 1.1 query (without it: the service description)", {"type": "string"}
    ),
    _query_param(
        "default-graph-uri",
        "graphs of this store forming the default graph",
        {"type": "array", "items": IRI},
    ),
    _query_param(
        "named-graph-uri", "graphs of this store usable with GRAPH", {"type": "array", "items": IRI}
    ),
    _query_param("format", "result format, overriding Accept", {"enum": _FORMAT_NAMES}),
    _query_param("timeout", TIMEOUT_DOC, TIMEOUT_SCHEMA),
]
SPARQL_FORM = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "update": {"type": "string", "description": "needs the update token"},
        "default-graph-uri": {"type": "array", "items": IRI},
        "named-graph-uri": {"type": "array", "items": IRI},
        "format": {"enum": _FORMAT_NAMES},
        "timeout": TIMEOUT_SCHEMA,
    },
}
SPARQL_ANSWERS = {
    "description": "query results (SELECT/ASK), a graph (CONSTRUCT/DESCRIBE) or, without "
    "a query, the service description",
    "content": content(*RESULTS, *GRAPHS),
}


def _sparql_get() -> dict[str, Any]:
    return {
        "parameters": SPARQL_PARAMS,
        "responses": {
            "200": SPARQL_ANSWERS,
            "303": {"description": "a browser without a query: redirected to the editor"},
            "400": BAD_REQUEST,
            "406": NOT_ACCEPTABLE,
            "413": TOO_LONG,
            "503": BUSY,
        },
    }


def _sparql_post() -> dict[str, Any]:
    return {
        "parameters": [p for p in SPARQL_PARAMS if p["name"] in ("format", "timeout")],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": SPARQL_FORM},
                "application/sparql-query": {"schema": {"type": "string"}},
                "application/sparql-update": {"schema": {"type": "string"}},
            },
        },
        "responses": {
            "200": SPARQL_ANSWERS,
            "204": {"description": "update applied"},
            "400": BAD_REQUEST,
            "403": _error("update without the token, or on a server without one"),
            "406": NOT_ACCEPTABLE,
            "413": TOO_LONG,
            "415": _error("a Content-Type other than the three above"),
            "503": BUSY,
        },
    }


def _void() -> dict[str, Any]:
    return {
        "responses": {
            "200": {"description": "VoID description", "content": content(*GRAPHS)},
            "406": NOT_ACCEPTABLE,
        },
        "param_schemas": {"format": {"enum": ["", *conneg.GRAPH, *conneg.FORMAT_ALIASES]}},
    }


def _dump() -> dict[str, Any]:
    media = [conneg.GRAPH[f] for f in ("turtle", "ntriples", "jsonld")]
    return {
        "responses": {
            "200": {"description": "the default graph", "content": content(*media)},
            "304": NOT_MODIFIED,
            "404": _error("no such dump format"),
        },
        "param_schemas": {"ext": {"type": "string", "enum": ["ttl", "nt", "jsonld"]}},
    }


def _queries() -> dict[str, Any]:
    return {
        "responses": {
            "200": {
                "description": "the canned queries",
                "content": {
                    "application/json": {"schema": QUERY_LIST},
                    HTML: {"schema": {"type": "string"}},
                },
            },
            "406": NOT_ACCEPTABLE,
        },
        "param_schemas": {"format": {"enum": ["", "json", "html"]}},
    }


def _canned() -> dict[str, Any]:
    table = [conneg.TABLE[f] for f in ("json", "csv", "tsv", "html")]
    return {
        "responses": {
            "200": {"description": "the rows", "content": content(*table)},
            "300": {
                "description": "an ambiguous name: the candidates",
                "content": {
                    "application/json": {"schema": AMBIGUOUS},
                    HTML: {"schema": {"type": "string"}},
                },
            },
            "304": NOT_MODIFIED,
            "400": _error("missing or unknown parameter, or a malformed value", TEXT, HTML),
            "404": _error("a name or value that matches nothing", TEXT, HTML),
            "406": NOT_ACCEPTABLE,
            "503": BUSY,
        },
        "param_schemas": {
            "format": {"enum": ["", "json", "csv", "tsv", "html"]},
            "timeout": TIMEOUT_SCHEMA,
        },
    }


def _resource() -> dict[str, Any]:
    media = [HTML, *GRAPHS, "application/sparql-results+json", "text/csv"]
    return {
        "responses": {
            "200": {"description": "the resource", "content": content(*media)},
            "404": _error("nothing is known about it", TEXT, HTML),
            "406": NOT_ACCEPTABLE,
            "503": BUSY,
        },
        "param_schemas": {
            "format": {"enum": ["", *conneg.GRAPH, *conneg.FORMAT_ALIASES, "json", "csv", "html"]}
        },
    }


def _operation(path: str, method: str, canned_names: set[str]) -> dict[str, Any] | None:
    if path == "/sparql":
        return _sparql_get() if method == "get" else _sparql_post()
    if path == "/.well-known/void":
        return _void()
    if path.startswith("/dump."):
        return _dump()
    if path == "/queries":
        return _queries()
    if path.startswith("/queries/") and path[len("/queries/") :] in canned_names:
        return _canned()
    if path.startswith("/resource/"):
        return _resource()
    return None


def install(app: FastAPI, canned_names: set[str]) -> None:
    """Rewrite the generated OpenAPI document once, on first use."""
    generate = app.openapi
    done: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "schema" not in done:
            done["schema"] = _rewrite(generate(), canned_names)
        return done["schema"]

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite(schema: dict[str, Any], canned_names: set[str]) -> dict[str, Any]:
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            spec = _operation(path, method, canned_names)
            responses = op.setdefault("responses", {})
            # FastAPI's 422 never happens: validation errors are answered 400 (app.py).
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                del responses["422"]
                responses.setdefault("400", BAD_REQUEST)
            if spec is None:
                continue
            if "parameters" in spec:
                op["parameters"] = spec["parameters"]
            if "requestBody" in spec:
                op["requestBody"] = spec["requestBody"]
            for name, extra in spec.get("param_schemas", {}).items():
                for prm in op.get("parameters", []):
                    if prm.get("name") == name:
                        prm["schema"] = extra
            for status, doc in spec["responses"].items():
                responses[status] = doc
            for status in list(responses):
                if status not in spec["responses"] and status != "400":
                    del responses[status]
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
