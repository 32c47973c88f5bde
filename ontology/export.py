"""Write the ontology in every dump format, and the JSON-LD context, from ``jiceng.ttl``.

    python ontology/export.py          # rewrite jiceng.nt, .jsonld, .rdf and context.jsonld
    python ontology/export.py --check  # exit 1 and name the stale files if any is out of date

``jiceng.ttl`` is the source; the exports are generated, deterministic (blank nodes get
content-derived labels) and committed, so that users of N-Triples, JSON-LD and RDF/XML
tools (Protégé) need no conversion.  ``tests/test_dumps.py`` checks they are current.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rdflib import Graph

from kg import formats
from kg.rdf import ONTOLOGY_TTL, PREFIXES, jsonld_context

HERE = Path(__file__).resolve().parent


def exports() -> dict[str, bytes]:
    """File name (in ontology/) -> the bytes it must hold."""
    graph = formats.stable_bnodes(Graph().parse(ONTOLOGY_TTL, format="turtle"))
    context = jsonld_context()
    doc = json.dumps({"@context": context}, ensure_ascii=False, indent=1, sort_keys=True)
    return {
        "jiceng.nt": formats.ntriples(graph),
        "jiceng.jsonld": formats.jsonld(graph, context),
        "jiceng.rdf": formats.rdfxml(graph, PREFIXES),
        "context.jsonld": (doc + "\n").encode("utf-8"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report stale files")
    args = p.parse_args(argv)
    stale = [name for name, data in exports().items()
             if not (HERE / name).is_file() or (HERE / name).read_bytes() != data]  # fmt: skip
    if args.check:
        for name in stale:
            print(f"ontology/{name} is out of date: run python ontology/export.py", file=sys.stderr)
        return 1 if stale else 0
    for name, data in exports().items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(stale)} changed of {len(exports())} files in {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
