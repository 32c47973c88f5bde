"""Content negotiation: pick an output format from ``format=`` or ``Accept``."""

from __future__ import annotations

# name -> media type; the first entry of each table is the default.
RESULTS = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
GRAPH = {
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
    "jsonld": "application/ld+json",
    "rdfxml": "application/rdf+xml",
}
TABLE = {  # canned queries and other tabular pages
    "json": "application/json",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "html": "text/html",
}

# Other media types clients send for the same thing.
ALIASES = {
    "application/json": "json",
    "application/sparql-results+json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/sparql-results+xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "text/turtle": "turtle",
    "application/x-turtle": "turtle",
    "application/turtle": "turtle",
    "application/n-triples": "ntriples",
    "text/plain": "ntriples",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "rdfxml",
    "text/html": "html",
    "application/xhtml+xml": "html",
}
# format= values accepted besides the table keys
FORMAT_ALIASES = {"ttl": "turtle", "nt": "ntriples", "n-triples": "ntriples", "json-ld": "jsonld"}


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """Media ranges with their q-values, best first (stable for equal q)."""
    if not header:
        return [("*/*", 1.0)]
    out: list[tuple[str, float, int]] = []
    for i, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        out.append((media, q, i))
    out.sort(key=lambda t: (-t[1], t[2]))
    return [(m, q) for m, q, _ in out if q > 0]


def negotiate(accept: str | None, offered: dict[str, str]) -> str | None:
    """Name of the best offered format for ``accept``, or None (→ 406)."""
    names = list(offered)
    for media, _q in parse_accept(accept):
        if media in ("*/*", "*"):
            return names[0]
        if media.endswith("/*"):
            major = media[:-1]
            for n in names:
                if offered[n].startswith(major):
                    return n
            continue
        name = ALIASES.get(media)
        if name in offered:
            return name
        for n in names:
            if offered[n] == media:
                return n
    return None


def choose(fmt: str | None, accept: str | None, offered: dict[str, str]) -> str | None:
    """``format=`` (name or media type) wins over ``Accept``; None when impossible."""
    if fmt:
        f = fmt.strip().lower()
        f = FORMAT_ALIASES.get(f, f)
        if f in offered:
            return f
        alias = ALIASES.get(f)
        return alias if alias in offered else None
    return negotiate(accept, offered)


def wants_html(accept: str | None) -> bool:
    """True when a browser asks: text/html explicitly preferred over data types."""
    for media, _q in parse_accept(accept):
        if media in ("text/html", "application/xhtml+xml"):
            return True
        if media in ("*/*", "*"):
            return False
        if media in ALIASES:
            return False
    return False
