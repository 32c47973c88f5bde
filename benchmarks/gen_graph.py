"""Generate a larger graph with the seed graph's shape, for the scale benchmark.

The seed dump (``build/kg.ttl``, ~13k triples) is replicated ``copies`` times.  Copy 0 is
the seed graph itself; copy ``k`` renames every resource IRI (``res:street/x`` →
``res:street/x-ck``) and every name of a renamed resource (``rdfs:label``,
``skos:prefLabel``/``altLabel``, ``dcterms:title``: ``花园路街道`` → ``副本k·花园路街道``,
``huayuanlu jiedao`` → ``fubenk huayuanlu jiedao``).  So the class and property
proportions are the seed's, each copy is a disjoint but identically shaped component
(documents, sentences, statements, people, places…), and a name from the seeds still
resolves to exactly one entity (copy 0's), as in the real graph.  Triples that mention
no resource (the ``res:dataset/…`` descriptions) appear once.

The output is Turtle laid out like ``jiceng build``'s (one block per subject, ``;`` and
``,``), because that is what ``jiceng serve`` loads in practice.

    python benchmarks/gen_graph.py --triples 1000000 -o build/scale/kg-1m.ttl
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

ROOT = Path(__file__).resolve().parents[1]
RES = "https://w3id.org/jiceng/resource/"
SHARED = RES + "dataset/"  # datasets are described once, not per copy
PREFIXES = {
    "dcterms": "http://purl.org/dc/terms/",
    "jc": "https://w3id.org/jiceng/ontology#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "prov": "http://www.w3.org/ns/prov#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
NAME_PREDICATES = {
    PREFIXES["rdfs"] + "label",
    PREFIXES["skos"] + "prefLabel",
    PREFIXES["skos"] + "altLabel",
    PREFIXES["dcterms"] + "title",
}
RDF_TYPE = PREFIXES["rdf"] + "type"
# Markers replaced per copy (control characters never occur in the dump).
IRI_MARK, ZH_MARK, LATN_MARK = "\x01", "\x02", "\x03"
_LOCAL = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass
class Template:
    shared: str  # written once
    per_copy: str  # written once per copy, markers replaced
    shared_triples: int
    copy_triples: int

    def triples(self, copies: int) -> int:
        return self.shared_triples + copies * self.copy_triples

    def copies_for(self, triples: int) -> int:
        return max(1, round((triples - self.shared_triples) / self.copy_triples))


def _renamed(term: ox.Term) -> bool:
    return (
        isinstance(term, ox.NamedNode)
        and term.value.startswith(RES)
        and not term.value.startswith(SHARED)
    ) or isinstance(term, ox.BlankNode)


def _node(term: ox.Term) -> str:
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}{IRI_MARK}"
    if _renamed(term):
        return f"<{term.value}{IRI_MARK}>"
    if isinstance(term, ox.NamedNode):
        for prefix, ns in PREFIXES.items():
            local = term.value[len(ns) :]
            if term.value.startswith(ns) and _LOCAL.fullmatch(local):
                return f"{prefix}:{local}"
    return str(term)


def _predicate(p: ox.NamedNode) -> str:
    return "a" if p.value == RDF_TYPE else _node(p)


def _object(s: ox.Term, p: ox.NamedNode, o: ox.Term) -> str:
    if isinstance(o, ox.Literal):
        text = str(o)  # N-Triples syntax, valid Turtle
        if p.value in NAME_PREDICATES and _renamed(s):
            lang = (o.language or "").lower()
            mark = ZH_MARK if lang.startswith("zh") and "latn" not in lang else LATN_MARK
            return text[0] + mark + text[1:]  # the prefix goes inside the quotes
        dt = o.datatype.value if o.datatype is not None else ""
        if dt == PREFIXES["xsd"] + "integer" and re.fullmatch(r"[+-]?\d+", o.value):
            return o.value  # as the builder writes it
        if not o.language and dt and dt != PREFIXES["xsd"] + "string":
            return text[: text.rindex("^^")] + "^^" + _node(o.datatype)
        return text
    return _node(o)


def _turtle(triples: list[ox.Triple]) -> str:
    by_subject: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for t in triples:
        by_subject[_node(t.subject)][_predicate(t.predicate)].append(
            _object(t.subject, t.predicate, t.object)
        )
    blocks = []
    for s in sorted(by_subject):
        preds = by_subject[s]
        order = sorted(preds, key=lambda p: (p != "a", p))
        body = " ;\n    ".join(f"{p} " + ",\n        ".join(sorted(preds[p])) for p in order)
        blocks.append(f"{s} {body} .\n")
    return "\n".join(blocks)


def template(seed: Path) -> Template:
    """Parse the seed dump once; split it into shared triples and the per-copy template."""
    triples = [
        q.triple
        for q in ox.parse(path=str(seed), format=ox.RdfFormat.TURTLE)
        if q.graph_name == ox.DefaultGraph()
    ]
    triples = list(dict.fromkeys(triples))  # a set, in a stable order
    per_copy = [t for t in triples if _renamed(t.subject) or _renamed(t.object)]
    shared = [t for t in triples if not (_renamed(t.subject) or _renamed(t.object))]
    head = "".join(f"@prefix {k}: <{v}> .\n" for k, v in PREFIXES.items()) + "\n"
    return Template(head + _turtle(shared) + "\n", _turtle(per_copy), len(shared), len(per_copy))


def copy_text(tpl: Template, k: int) -> str:
    if k == 0:
        return tpl.per_copy.replace(IRI_MARK, "").replace(ZH_MARK, "").replace(LATN_MARK, "")
    return (
        tpl.per_copy.replace(IRI_MARK, f"-c{k}")
        .replace(ZH_MARK, f"副本{k}·")
        .replace(LATN_MARK, f"fuben{k} ")
    )


def generate(seed: Path, triples: int, out: Path) -> dict:
    """Write a graph of about ``triples`` triples to ``out``; return what was written."""
    t0 = time.perf_counter()
    tpl = template(seed)
    copies = tpl.copies_for(triples)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(tpl.shared)
        for k in range(copies):
            f.write("\n")
            f.write(copy_text(tpl, k))
    tmp.replace(out)
    return {
        "path": str(out),
        "copies": copies,
        "triples": tpl.triples(copies),
        "bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=Path, default=ROOT / "build" / "kg.ttl")
    ap.add_argument("--triples", type=float, required=True, help="target size, e.g. 1e6")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    print(json.dumps(generate(args.seed, int(args.triples), args.output), indent=1))


if __name__ == "__main__":
    main()
