"""Validate instance data against the Jiceng SHACL shapes.

The ontology (``ontology/jiceng.ttl``) is mixed in as pySHACL's ontology graph so
that ``sh:targetClass`` / ``sh:class`` follow ``rdfs:subClassOf`` (a ``jc:Street`` is
a ``jc:Place``).  No inference is run: RDFS entailment would add nothing the
shapes need, would make the cardinality checks count inferred triples (e.g.
``jc:sentence`` is a sub-property of ``prov:wasDerivedFrom``), and is slow.

Only ``sh:Violation`` results make the data non-conforming; warnings are listed
in the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyshacl
from rdflib import Dataset, Graph

ONTOLOGY_DIR = Path(__file__).resolve().parents[1] / "ontology"
ONTOLOGY_PATH = ONTOLOGY_DIR / "jiceng.ttl"
SHAPES_PATH = ONTOLOGY_DIR / "shapes.ttl"


def _load(path: str | Path) -> Graph:
    """Parse an RDF file, guessing the syntax from its extension.  Quads (TriG, N-Quads)
    are validated as the union of their graphs, which is what the triple dumps hold."""
    path = Path(path)
    if path.suffix.lower() in (".trig", ".nq"):
        dataset = Dataset()
        dataset.parse(str(path), format="trig" if path.suffix.lower() == ".trig" else "nquads")
        graph = Graph()
        for s, p, o, _ in dataset.quads((None, None, None, None)):
            graph.add((s, p, o))
        return graph
    graph = Graph()
    graph.parse(str(path))
    return graph


def validate(data_path: str | Path, shapes_path: Path | None = None) -> tuple[bool, str]:
    """Validate the RDF file at ``data_path``.

    Returns ``(conforms, report_text)``; ``conforms`` is False only when there is
    at least one ``sh:Violation`` (warnings are reported but allowed).
    """
    data = _load(data_path)
    shapes = _load(shapes_path or SHAPES_PATH)
    ontology = _load(ONTOLOGY_PATH)
    conforms, _report_graph, report_text = pyshacl.validate(
        data,
        shacl_graph=shapes,
        ont_graph=ontology,  # mixed into a copy of the data graph, not into data itself
        inference="none",
        allow_warnings=True,
        allow_infos=True,
        advanced=True,  # SHACL-AF: SPARQL targets (see shapes.ttl)
    )
    return bool(conforms), str(report_text)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m kg.validate DATA [--shapes SHAPES]``."""
    parser = argparse.ArgumentParser(description="Validate Jiceng KG data with SHACL.")
    parser.add_argument("data", type=Path, help="RDF file to validate (Turtle, N-Triples, …)")
    parser.add_argument("--shapes", type=Path, default=None, help="SHACL shapes file")
    args = parser.parse_args(argv)
    conforms, report = validate(args.data, args.shapes)
    print(report)
    return 0 if conforms else 1


if __name__ == "__main__":
    sys.exit(main())
