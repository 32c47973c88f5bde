"""Push a dump into a SPARQL 1.1 store with the Graph Store Protocol (``jiceng load``).

- A triples dump (.ttl, .nt, .rdf, .jsonld) is sent as it is, in one ``PUT`` to
  ``?graph=IRI`` (``--graph``) or to ``?default``.
- A quads dump (.trig, .nq) is split by graph: one ``PUT`` per named graph, so that an
  article re-extracted into its own graph replaces that graph and nothing else.  Its
  default-graph triples go where a triples dump would.

``PUT`` replaces a graph whole.  Each graph is one request, hence atomic on its own;
a failure part-way leaves the graphs sent before it replaced (the message says how
many).  Blank nodes are scoped to one request, so none may be shared across graphs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pyoxigraph as ox

from server.remote import first_line, split_credentials

TRIPLE_MEDIA = {
    ".ttl": "text/turtle",
    ".nt": "application/n-triples",
    ".rdf": "application/rdf+xml",
    ".owl": "application/rdf+xml",
    ".xml": "application/rdf+xml",
    ".jsonld": "application/ld+json",
}
QUAD_FORMATS = {".trig": ox.RdfFormat.TRIG, ".nq": ox.RdfFormat.N_QUADS}


class LoadError(Exception):
    """One user-facing line; ``input`` is True when the dump itself is the problem."""

    def __init__(self, message: str, input: bool = False) -> None:
        super().__init__(message)
        self.input = input


@dataclass
class Summary:
    url: str
    graphs: list[str] = field(default_factory=list)  # "" stands for the default graph
    triples: int | None = None  # counted for quad dumps only (triples dumps are not parsed)
    seconds: float = 0.0


def target(url: str, graph: str | None) -> str:
    """The GSP address of a graph: ``URL?graph=IRI`` or ``URL?default``."""
    sep = "&" if "?" in url else "?"
    return url + sep + (urlencode({"graph": graph}) if graph else "default")


def split_graphs(dump: Path, fmt: ox.RdfFormat) -> dict[str | None, list[ox.Triple]]:
    """Quads grouped by graph name (None: the default graph), in order of appearance."""
    graphs: dict[str | None, list[ox.Triple]] = {}
    try:
        for quad in ox.parse(path=str(dump), format=fmt):
            g = quad.graph_name
            key = g.value if isinstance(g, ox.NamedNode) else None
            if isinstance(g, ox.BlankNode):
                raise LoadError(f"{dump}: graph names must be IRIs, not {g}", input=True)
            graphs.setdefault(key, []).append(quad.triple)
    except (SyntaxError, ValueError) as exc:
        raise LoadError(f"{dump}: cannot parse: {first_line(str(exc))}", input=True) from None
    return graphs


def put(client: httpx.Client, url: str, graph: str | None, media: str, body: bytes) -> None:
    where = target(url, graph)
    try:
        r = client.put(where, content=body, headers={"Content-Type": media})
    except httpx.TimeoutException:
        raise LoadError(f"PUT {where}: no answer in time") from None
    except httpx.HTTPError as exc:
        raise LoadError(f"PUT {where}: cannot reach the store: {exc}") from None
    if not 200 <= r.status_code < 300:
        message = first_line(r.text) or "no message"
        raise LoadError(f"PUT {where}: {r.status_code} {r.reason_phrase}: {message}")


def load(url: str, dump: Path, graph: str | None = None, timeout: float = 300.0) -> Summary:
    """Send ``dump`` to the Graph Store Protocol endpoint ``url`` (see the module doc)."""
    start = time.monotonic()
    dump = Path(dump)
    suffix = dump.suffix.lower()
    if suffix not in TRIPLE_MEDIA and suffix not in QUAD_FORMATS:
        known = ", ".join([*TRIPLE_MEDIA, *QUAD_FORMATS])
        raise LoadError(f"{dump}: unknown RDF format (use {known})", input=True)
    if not dump.is_file():
        raise LoadError(f"{dump}: no such file", input=True)
    if graph is not None:
        try:
            ox.NamedNode(graph)
        except ValueError:
            raise LoadError(f"--graph {graph!r} is not an IRI", input=True) from None
    clean, auth = split_credentials(url)
    summary = Summary(clean)
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), auth=auth) as client:
        if suffix in TRIPLE_MEDIA:
            put(client, clean, graph, TRIPLE_MEDIA[suffix], dump.read_bytes())
            summary.graphs.append(graph or "")
        else:
            graphs = split_graphs(dump, QUAD_FORMATS[suffix])
            if not graphs:
                raise LoadError(f"{dump}: no triples", input=True)
            summary.triples = 0
            for i, (name, triples) in enumerate(graphs.items()):
                body = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
                try:
                    put(client, clean, name or graph, "application/n-triples", body)
                except LoadError as exc:
                    if i:
                        raise LoadError(f"{exc} (after {i} of {len(graphs)} graphs)") from None
                    raise
                summary.graphs.append(name or graph or "")
                summary.triples += len(triples)
    summary.seconds = time.monotonic() - start
    return summary
