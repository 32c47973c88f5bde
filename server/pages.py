"""HTML pages: home (counts, canned queries, SPARQL editor) and resource pages."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

from server import conneg

TEMPLATES = Path(__file__).resolve().parent / "templates"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
router = APIRouter()

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SKOS = "http://www.w3.org/2004/02/skos/core#"
JC = "https://w3id.org/jiceng/ontology#"
KNOWN_NS = {
    JC: "jc:",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf:",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs:",
    SKOS: "skos:",
    "http://www.w3.org/ns/prov#": "prov:",
    "http://purl.org/dc/terms/": "dcterms:",
    "http://www.w3.org/2001/XMLSchema#": "xsd:",
}


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    be = request.app.state.backend
    html = _env.get_template(template).render(request=request, stats=be.stats, **ctx)
    return HTMLResponse(html, status_code=status)


def curie(iri: str) -> str:
    for ns, prefix in KNOWN_NS.items():
        if iri.startswith(ns):
            return prefix + iri[len(ns) :]
    return iri


def local_href(iri: str, base: str) -> str:
    """Resource IRIs link to this server's /resource/ pages; others as they are."""
    return "/resource/" + iri[len(base) :] if iri.startswith(base) else iri


@dataclass
class Cell:
    text: str
    href: str | None = None


def rows_for_html(rows: list[tuple[Any, ...]], base: str) -> list[list[Cell]]:
    out = []
    for row in rows:
        cells = []
        for t in row:
            if t is None:
                cells.append(Cell(""))
            elif isinstance(t, ox.NamedNode):
                cells.append(
                    Cell(
                        curie(t.value) if not t.value.startswith(base) else t.value[len(base) :],
                        local_href(t.value, base),
                    )
                )
            else:
                cells.append(Cell(getattr(t, "value", str(t))))
        out.append(cells)
    return out


# -- home ----------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    be = request.app.state.backend
    tabs = [{"name": cq.name, "query": cq.text} for cq in be.queries.values()]
    return render(
        request,
        "home.html",
        queries=list(be.queries.values()),
        tabs_json=Markup(json.dumps(tabs, ensure_ascii=False).replace("</", "<\\/")),
        classes=sorted(be.class_partition, key=lambda c: -c[1])[:20],
        curie=curie,
    )


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
        '<circle cx="8" cy="8" r="7" fill="#8b1a1a"/></svg>'
    )
    return Response(svg, media_type="image/svg+xml")


# -- resources ---------------------------------------------------------------------------

RESOURCE_SUFFIXES = {
    "ttl": "turtle",
    "nt": "ntriples",
    "jsonld": "jsonld",
    "rdf": "rdfxml",
    "json": "json",
    "csv": "csv",
    "html": "html",
}


def highlight(sentence: str, needles: list[str]) -> Markup:
    """Escape ``sentence`` and wrap each occurrence of a needle in <mark>."""
    needles = sorted({n for n in needles if n}, key=len, reverse=True)
    if not needles:
        return escape(sentence)
    pattern = re.compile("|".join(re.escape(n) for n in needles))
    out, pos = [], 0
    for m in pattern.finditer(sentence):
        out.append(escape(sentence[pos : m.start()]))
        out.append(Markup("<mark>") + escape(m.group(0)) + Markup("</mark>"))
        pos = m.end()
    out.append(escape(sentence[pos:]))
    return Markup("").join(out)


def neighbourhood_svg(center: str, edges: list[tuple[str, str, str, str]], base: str) -> Markup:
    """A radial SVG: the entity in the middle, neighbours around it (max 24)."""
    seen: dict[str, tuple[str, list[str], str]] = {}
    for direction, prop, iri, label in edges:
        node = seen.setdefault(iri, (label, [], direction))
        node[1].append(("" if direction == "out" else "← ") + curie(prop).split(":")[-1])
    nodes = list(seen.items())[:24]
    w, h, r = 640, 420, 160
    cx, cy = w / 2, h / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {w} {h}" '
        f'width="{w}" height="{h}" role="img" aria-label="neighbourhood">'
    ]
    n = max(len(nodes), 1)
    coords = []
    for i, (iri, (label, props, _d)) in enumerate(nodes):
        a = 2 * math.pi * i / n - math.pi / 2
        x, y = cx + r * math.cos(a) * 1.35, cy + r * math.sin(a)
        coords.append((iri, label, props, x, y))
        parts.append(
            f'<line x1="{cx:.0f}" y1="{cy:.0f}" x2="{x:.0f}" y2="{y:.0f}" stroke="#aab" />'
        )
        mx, my = (cx + x) / 2, (cy + y) / 2
        parts.append(
            f'<text x="{mx:.0f}" y="{my:.0f}" class="edge">{escape(", ".join(props[:2]))}</text>'
        )
    for iri, label, _props, x, y in coords:
        href = escape(local_href(iri, base))
        text = escape((label or curie(iri).rsplit("/", 1)[-1])[:14])
        parts.append(
            f'<a href="{href}"><circle cx="{x:.0f}" cy="{y:.0f}" r="6" fill="#4a7" />'
            f'<text x="{x:.0f}" y="{y - 10:.0f}" class="node">{text}</text></a>'
        )
    parts.append(f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="9" fill="#c33" />')
    parts.append(f'<text x="{cx:.0f}" y="{cy - 14:.0f}" class="center">{escape(center)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@router.get("/resource/{path:path}", summary="Dereference a resource IRI", tags=["resources"])
async def resource(request: Request, path: str, format: str | None = None) -> Response:
    """`https://w3id.org/jiceng/resource/{path}` → HTML (browsers), Turtle, N-Triples,
    JSON-LD or RDF/XML by `Accept`/`format=`; `.ttl`, `.nt`, `.jsonld`, `.rdf`, `.json`
    (facts as SPARQL JSON), `.csv` (facts) suffixes also work."""
    from server.backend import ServiceError  # local: avoid an import cycle at module load

    be = request.app.state.backend
    base = be.config.resource_base
    suffix = None
    iri = base + path
    if iri not in be.index.info and "." in path:
        stem, ext = path.rsplit(".", 1)
        if ext in RESOURCE_SUFFIXES:
            suffix, iri = RESOURCE_SUFFIXES[ext], base + stem
    try:
        node = ox.NamedNode(iri)
    except ValueError:
        raise ServiceError(404, f"not a resource IRI: {iri}") from None
    accept = request.headers.get("accept")
    fmt = suffix or format
    if fmt in ("json", "csv", "html"):
        kind = fmt
    elif fmt is None and conneg.wants_html(accept):
        kind = "html"
    else:
        kind = "rdf"
    if kind == "rdf":
        chosen = conneg.choose(fmt, accept, conneg.GRAPH)
        if chosen is None:
            raise ServiceError(406, "available: text/html, " + ", ".join(conneg.GRAPH.values()))
        q = (
            f"CONSTRUCT {{ {node} ?p ?o . ?s ?q {node} }} WHERE "
            f"{{ {{ {node} ?p ?o }} UNION {{ ?s ?q {node} }} }}"
        )
        reply = await be.run(
            {"kind": "query", "query": q, "format": chosen, "max_rows": be.config.max_rows}
        )
        if not reply["body"].strip() or reply["body"].strip() in (b"[]", b"{}"):
            if not await _exists(be, node):
                raise ServiceError(404, f"nothing is known about {iri}")
        media = reply["media_type"] + ("; charset=utf-8" if chosen == "turtle" else "")
        return Response(reply["body"], media_type=media, headers={"Vary": "Accept"})

    entity_q = be.queries.get("entity")
    if entity_q is None:
        raise ServiceError(500, "queries/entity.rq is missing")
    from server import sparqltext

    # The same query as /queries/entity?name=<iri>, bound the same way.
    text = sparqltext.inject_values(entity_q.text, {entity_q.params[0].var: node})
    if kind in ("json", "csv"):
        reply = await be.run(
            {"kind": "query", "query": text, "format": kind, "max_rows": be.config.max_rows}
        )
        return Response(reply["body"], media_type=reply["media_type"])
    reply = await be.run({"kind": "rows", "query": text, "max_rows": be.config.max_rows})
    variables, rows = reply["vars"], reply["rows"]
    if not rows:
        return render(request, "error.html", status=404, message=f"nothing is known about {iri}")
    facts = [dict(zip(variables, r, strict=True)) for r in rows]
    ctx = _entity_context(iri, facts, base)
    return render(request, "resource.html", iri=iri, **ctx)


async def _exists(be: Any, node: ox.NamedNode) -> bool:
    reply = await be.run(
        {
            "kind": "query",
            "query": f"ASK {{ {{ {node} ?p ?o }} UNION {{ ?s ?p {node} }} }}",
            "format": "json",
            "max_rows": 1,
        }
    )
    return b"true" in reply["body"]


def _val(t: Any) -> str:
    return "" if t is None else getattr(t, "value", str(t))


def _entity_context(iri: str, facts: list[dict[str, Any]], base: str) -> dict[str, Any]:
    label = next((_val(f["entityLabel"]) for f in facts if f.get("entityLabel")), "")
    types, labels, alt, literals = [], [], [], []
    links: dict[tuple[str, str, str], dict[str, Any]] = {}
    evidence: list[dict[str, Any]] = []
    edges = []
    for f in facts:
        prop, value, direction = _val(f["property"]), f["value"], _val(f["direction"])
        if direction == "out" and prop == RDF_TYPE:
            if _val(value) not in types:
                types.append(_val(value))
            continue
        if direction == "out" and isinstance(value, ox.Literal):
            entry = (curie(prop), value.value, value.language or "")
            if prop == SKOS + "altLabel":
                alt.append(value.value)
            if prop in (RDFS_LABEL, SKOS + "prefLabel", SKOS + "altLabel"):
                labels.append(value.value)
            if entry not in literals:
                literals.append(entry)
            continue
        if isinstance(value, ox.NamedNode):
            key = (direction, prop, value.value)
            if key not in links:
                links[key] = {
                    "direction": direction,
                    "property": curie(prop),
                    "iri": value.value,
                    "href": local_href(value.value, base),
                    "label": _val(f.get("valueLabel")),
                    "type": _val(f.get("valueType")),
                }
                if prop != JC + "mentionedIn":
                    edges.append((direction, prop, value.value, _val(f.get("valueLabel"))))
        if f.get("sentenceText") is not None or f.get("evidence") is not None:
            sentence = _val(f.get("sentenceText")) or _val(f.get("evidence"))
            needles = [n for n in {label, *alt, *labels} if n and n in sentence]
            if not needles and f.get("evidence") is not None and _val(f["evidence"]) in sentence:
                needles = [_val(f["evidence"])]
            item = {
                "property": curie(prop),
                "direction": direction,
                "other": _val(f.get("valueLabel")) or curie(_val(value)),
                "other_href": local_href(_val(value), base)
                if isinstance(value, ox.NamedNode)
                else None,
                "sentence": highlight(sentence, needles),
                "evidence": _val(f.get("evidence")),
                "document": _val(f.get("document")),
                "document_href": local_href(_val(f.get("document")), base)
                if f.get("document")
                else None,
            }
            if item not in evidence:
                evidence.append(item)
    return {
        "label": label or iri[len(base) :],
        "types": [curie(t) for t in types],
        "literals": literals,
        "links": list(links.values()),
        "evidence": evidence,
        "svg": neighbourhood_svg(label or iri, edges, base),
    }
