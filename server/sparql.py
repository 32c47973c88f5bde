"""SPARQL 1.1 Protocol endpoint, service description, VoID and whole-graph dumps."""

from __future__ import annotations

import hmac
import re
from urllib.parse import parse_qs

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from server import conneg, results, sparqltext, store
from server.backend import INTERNAL_TIMEOUT, Backend, Cached, ServiceError

router = APIRouter()

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
TRUNCATED_HEADER = "X-Jiceng-Truncated"


def backend(request: Request) -> Backend:
    return request.app.state.backend


def not_modified(if_none_match: str | None, etag: str) -> bool:
    inm = if_none_match
    return bool(inm) and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")])


def etag_response(request: Request, entry: Cached, extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": entry.etag, "Cache-Control": "no-cache", **entry.headers, **(extra or {})}
    if not_modified(request.headers.get("if-none-match"), entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type=entry.media_type, headers=headers)


def cache_key(
    query: str,
    default_graph: list[str] | None,
    named_graphs: list[str] | None,
    fmt: str | None,
    accept: str | None,
) -> tuple[object, ...]:
    """What a ``/sparql`` answer depends on (besides the graph generation)."""
    return ("sparql", query, tuple(default_graph or ()), tuple(named_graphs or ()), fmt, accept)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _read_params(request: Request, be: Backend) -> dict[str, list[str]]:
    """Merge URL parameters and the POST body into protocol parameters."""
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    if request.method != "POST":
        return params
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_body(request, body_limit(be.config.max_query_bytes))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(400, "request body is not UTF-8") from None
    if not add_body_params(params, ctype, text):
        raise ServiceError(
            415,
            f"unsupported Content-Type {ctype or '(none)'}: "
            f"use {FORM}, {SPARQL_QUERY} or {SPARQL_UPDATE}",
        )
    return params


def body_limit(max_query_bytes: int) -> int:
    """The longest POST body read: a form-encoded query may triple in size, plus the
    other parameters."""
    return max_query_bytes * 3 + 4096


def add_body_params(params: dict[str, list[str]], ctype: str, text: str) -> bool:
    """Add a POST body's protocol parameters to ``params``; False for a Content-Type the
    protocol does not define (shared with the cached-answer layer, ``answered.py``)."""
    if ctype == FORM:
        for k, vs in parse_qs(text, keep_blank_values=True).items():
            params.setdefault(k, []).extend(vs)
    elif ctype == SPARQL_QUERY:
        params.setdefault("query", []).append(text)
    elif ctype == SPARQL_UPDATE:
        params.setdefault("update", []).append(text)
    else:
        return False
    return True


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes: a client
    cannot make the server buffer a gigabyte to be told it is too long."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ServiceError(413, f"request body over {limit} bytes")
    return bytes(body)


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ServiceError(400, f"more than one {name} parameter")
    return values[0]


def _check_length(text: str, be: Backend, what: str) -> None:
    if len(text.encode("utf-8")) > be.config.max_query_bytes:
        raise ServiceError(413, f"{what} longer than {be.config.max_query_bytes} bytes")


def _check_nesting(text: str, what: str) -> None:
    # pyoxigraph recurses once per level; refuse early, with a message, what no real
    # query needs (workers also have a large stack, so nothing deeper crashes them).
    depth = sparqltext.nesting_depth(text)
    if depth > sparqltext.MAX_NESTING:
        raise ServiceError(
            400,
            f"{what} nested {depth} levels deep ({{ }}, ( ) or [ ]); "
            f"at most {sparqltext.MAX_NESTING} are allowed",
        )


@router.get("/sparql", summary="SPARQL 1.1 Protocol endpoint (GET)")
async def sparql_get(request: Request) -> Response:
    """SPARQL 1.1 Query by GET `?query=`; without a query: the service description
    (Turtle, JSON-LD by `Accept`) or, in a browser, a redirect to the editor."""
    return await sparql_endpoint(request)


@router.post("/sparql", summary="SPARQL 1.1 Protocol endpoint (POST)")
async def sparql_post(request: Request) -> Response:
    """POST `application/x-www-form-urlencoded` (`query=` or `update=`),
    `application/sparql-query` or `application/sparql-update` (needs the update token)."""
    return await sparql_endpoint(request)


async def sparql_endpoint(request: Request) -> Response:
    """SPARQL 1.1 Query (GET/POST) and, with the update token, Update (POST).

    Results by `Accept` or `format=` (json, xml, csv, tsv; turtle, ntriples, jsonld,
    rdfxml).  `timeout=` seconds lowers the time limit.  Results over the row limit
    are cut: header `X-Jiceng-Truncated: true` and `"truncated": true` in JSON.
    """
    be = backend(request)
    params = await _read_params(request, be)
    query, update = _one(params, "query"), _one(params, "update")
    if query is not None and update is not None:
        raise ServiceError(400, "give either query or update, not both")
    if update is not None:
        if request.method != "POST":
            raise ServiceError(400, "SPARQL Update must be sent with POST")
        return await _update(request, be, update)
    timeout = be.timeout_for(_one(params, "timeout"))  # checked even when unused
    for name in ("default-graph-uri", "named-graph-uri"):
        for iri in params.get(name, []):
            try:
                ox.NamedNode(iri)
            except ValueError:
                raise ServiceError(400, f"{name}: not an absolute IRI: {iri!r}") from None
    if query is None:
        if request.method == "POST":
            raise ServiceError(400, "missing query parameter")
        if conneg.wants_html(request.headers.get("accept")):
            return RedirectResponse("/#editor", status_code=303)
        return service_description(request, be, _one(params, "format"))
    _check_length(query, be, "query")
    _check_nesting(query, "query")
    if sparqltext.forbidden_keyword(query):
        raise ServiceError(
            400, "SERVICE is not allowed: this endpoint never makes outbound requests"
        )
    job = {
        "kind": "query",
        "query": query,
        "default_graph": params.get("default-graph-uri"),
        "named_graphs": params.get("named-graph-uri"),
        "format": _one(params, "format"),
        "accept": request.headers.get("accept"),
        "max_rows": be.config.max_rows,
    }
    # The graph only changes on an update or a reload (a new cache generation), so an
    # answer can be served again with its ETag; queries whose answer varies are not kept.
    key = cache_key(
        query, job["default_graph"], job["named_graphs"], job["format"], job["accept"]
    )  # the fast path for cached answers (``answered.py``) looks them up by it too
    volatile = _VOLATILE.search(query) is not None
    entry = None if volatile else be.cache_get(key)
    if entry is None:
        reply = await be.run(job, timeout)
        extra = {TRUNCATED_HEADER: "true"} if reply["truncated"] else {}
        media = reply["media_type"]
        if media.startswith("text/") or media.endswith("json"):
            media += "; charset=utf-8"
        entry = be.cache_put(key, media, reply["body"], keep=not volatile, **extra)
    return etag_response(
        request, entry, {"Vary": "Accept", "Access-Control-Expose-Headers": "ETag"}
    )


# Functions whose value changes from one evaluation to the next.
_VOLATILE = re.compile(r"\b(?:RAND|NOW|UUID|STRUUID|BNODE)\s*\(", re.IGNORECASE)


def require_token(request: Request, be: Backend, what: str) -> None:
    """403 unless the request carries ``Authorization: Bearer <the update token>``."""
    token = be.config.update_token
    auth = request.headers.get("authorization", "")
    if not token:
        raise ServiceError(403, f"{what} is disabled on this server")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ServiceError(403, f"{what} needs 'Authorization: Bearer <token>'")


async def _update(request: Request, be: Backend, update: str) -> Response:
    require_token(request, be, "SPARQL Update")
    _check_length(update, be, "update")
    _check_nesting(update, "update")
    bad = sparqltext.forbidden_keyword(update, ("SERVICE", "LOAD"))
    if bad:
        raise ServiceError(
            400, f"{bad} is not allowed: this endpoint never makes outbound requests"
        )
    await be.update(update)
    return Response(status_code=204)


# -- service description and VoID ---------------------------------------------------------

SD_PREFIXES = """@prefix sd: <http://www.w3.org/ns/sparql-service-description#> .
@prefix void: <http://rdfs.org/ns/void#> .
@prefix formats: <http://www.w3.org/ns/formats/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""


def _rdf_response(request: Request, turtle: str, fmt: str | None = None) -> Response:
    chosen = conneg.choose(fmt, request.headers.get("accept"), conneg.GRAPH)
    if chosen is None:
        raise ServiceError(406, "available: " + ", ".join(conneg.GRAPH.values()))
    if chosen == "turtle":
        body = turtle.encode()
    else:
        quads = list(ox.parse(turtle, format=ox.RdfFormat.TURTLE))
        body = results.triples(chosen, [q.triple for q in quads])
    media = conneg.GRAPH[chosen]
    return Response(
        body,
        media_type=media + ("; charset=utf-8" if media.startswith("text/") else ""),
        headers={"Vary": "Accept"},
    )


def service_description(request: Request, be: Backend, fmt: str | None = None) -> Response:
    base = _base_url(request)
    langs = "sd:SPARQL11Query" + (", sd:SPARQL11Update" if be.config.update_token else "")
    result_formats = ", ".join(
        f"formats:{f}"
        for f in (
            "SPARQL_Results_JSON",
            "SPARQL_Results_XML",
            "SPARQL_Results_CSV",
            "SPARQL_Results_TSV",
            "Turtle",
            "N-Triples",
            "JSON-LD",
            "RDF_XML",
        )
    )
    ttl = f"""{SD_PREFIXES}
<{base}/sparql> a sd:Service ;
  sd:endpoint <{base}/sparql> ;
  sd:supportedLanguage {langs} ;
  sd:resultFormat {result_formats} ;
  sd:feature sd:DereferencesURIs ;
  dcterms:description "Jiceng KG: grassroots Party building in Zhengzhou. SERVICE is refused; \
FROM/FROM NAMED select local graphs only."@en ;
  sd:defaultDataset [ a sd:Dataset ;
    sd:defaultGraph [ a sd:Graph ; void:triples {be.stats.get("triples", 0)} ] ;
    sd:namedGraph [ a sd:NamedGraph ; sd:name <{store.ONTOLOGY_GRAPH}> ;
      sd:graph [ a sd:Graph ; void:triples {be.stats.get("ontology_triples", 0)} ] ] ] .
"""
    if not be.stats.get("ontology_triples"):
        ttl = ttl.replace(
            " ;\n    sd:namedGraph",
            ' ;\n    dcterms:description "no ontology loaded" ;\n    sd:namedGraph',
        )
    return _rdf_response(request, ttl, fmt)


def void_turtle(base: str, be: Backend) -> str:
    s = be.stats
    lines = [
        SD_PREFIXES,
        f"<{base}/.well-known/void#dataset> a void:Dataset ;",
        '  dcterms:title "Jiceng KG"@en, "基层党建知识图谱"@zh ;',
        f"  void:sparqlEndpoint <{base}/sparql> ;",
        f"  void:dataDump <{base}/dump.ttl>, <{base}/dump.nt>, <{base}/dump.jsonld> ;",
        f'  void:uriSpace "{be.config.resource_base}" ;',
        f"  void:triples {s.get('triples', 0)} ;",
        f"  void:entities {s.get('entities', 0)} ;",
        f"  void:classes {s.get('classes', 0)} ;",
        f"  void:properties {s.get('properties', 0)}",
    ]
    for cls, n in be.class_partition:
        lines[-1] += " ;"
        lines.append(f"  void:classPartition [ void:class <{cls}> ; void:entities {n} ]")
    for prop, n in be.property_partition:
        lines[-1] += " ;"
        lines.append(f"  void:propertyPartition [ void:property <{prop}> ; void:triples {n} ]")
    lines[-1] += " ."
    return "\n".join(lines) + "\n"


@router.get("/.well-known/void", summary="VoID description of the dataset")
async def void(request: Request, format: str | None = None) -> Response:
    """Counts (triples, entities, classes, properties) and class/property partitions.
    Turtle by default; JSON-LD, N-Triples or RDF/XML by `Accept` or `format=`."""
    be = backend(request)
    return _rdf_response(request, void_turtle(_base_url(request), be), format)


# -- dumps ----------------------------------------------------------------------------------

DUMPS = {"ttl": "turtle", "nt": "ntriples", "jsonld": "jsonld"}


@router.head("/dump.{ext}", include_in_schema=False)
@router.get("/dump.{ext}", summary="Download the whole graph (default graph)")
async def dump(request: Request, ext: str) -> Response:
    """`/dump.ttl`, `/dump.nt` or `/dump.jsonld`, with an ETag (304 on If-None-Match)."""
    fmt = DUMPS.get(ext)
    if fmt is None:
        raise ServiceError(404, "dumps: /dump.ttl, /dump.nt, /dump.jsonld")
    be = backend(request)
    entry = be.cache_get(("dump", fmt))
    if entry is None:
        reply = await be.run({"kind": "dump", "format": fmt}, INTERNAL_TIMEOUT)
        media = conneg.GRAPH[fmt] + ("; charset=utf-8" if fmt == "turtle" else "")
        entry = be.cache_put(("dump", fmt), media, reply["body"])
    return etag_response(
        request, entry, {"Content-Disposition": f'attachment; filename="jiceng-kg.{ext}"'}
    )
