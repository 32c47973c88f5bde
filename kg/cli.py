"""The ``jiceng`` command: build, query, stats, validate, eval, serve, load.

This is the only module that ties the NLP pipeline (kg) to the server package.
Every user-facing failure is one line on stderr and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from kg import iri as iris
from kg.files import write_atomic

EXIT_USAGE, EXIT_INPUT, EXIT_FAIL = 2, 3, 1

FORMATS = {  # --format name -> (rdflib/our serialiser name, default extension)
    "turtle": ("turtle", ".ttl"),
    "ntriples": ("nt", ".nt"),
    "jsonld": ("json-ld", ".jsonld"),
    "trig": ("trig", ".trig"),
    "nquads": ("nquads", ".nq"),
    "rdfxml": ("xml", ".rdf"),
}
EXTENSIONS = {ext: name for name, (_, ext) in FORMATS.items()} | {
    ".owl": "rdfxml",
    ".xml": "rdfxml",
    ".json": "jsonld",
}


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _fail(message: str, code: int) -> int:
    print(f"jiceng: error: {message}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- build


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Files, directories (every *.txt inside) and globs, in a stable order."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if any(c in item for c in "*?[") and not path.exists():
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise CliError(f"{item}: no file matches this pattern")
            out += [m for m in matches if m.is_file()]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not files:
                raise CliError(f"{item}: directory has no .txt files")
            out += files
        elif path.exists():
            out.append(path)
        else:
            raise CliError(f"{item}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def output_format(out: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    name = EXTENSIONS.get(out.suffix.lower())
    if name is None:
        raise CliError(
            f"{out}: cannot tell the format from the extension; use --format "
            f"({', '.join(FORMATS)})",
            EXIT_USAGE,
        )
    return name


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, n: int, total: int, label: str) -> None:
        if not self.enabled:
            return
        width = 30
        done = int(width * n / total)
        bar = "#" * done + "-" * (width - done)
        sys.stderr.write(f"\r[{bar}] {n}/{total} {label[:40]:<40}")
        sys.stderr.flush()
        if n == total:
            sys.stderr.write("\n")


def cmd_build(args: argparse.Namespace) -> int:
    from kg.ingest import IngestError
    from kg.pipeline import build_dump
    from kg.rdf import check_base
    from kg.workers import WorkerDied

    out = Path(args.output)
    fmt = output_format(out, args.format)
    paths = collect_inputs(args.inputs)
    base = args.base or iris.RESOURCE
    if not base.endswith(("/", "#")):
        base += "/"
    try:
        check_base(base)
    except ValueError as exc:
        raise CliError(f"--base: {exc}", EXIT_USAGE) from None
    try:
        data, _, report = build_dump(
            paths,
            FORMATS[fmt][0],
            strict=args.strict,
            base=base,
            progress=_Progress(not args.quiet),
            jobs=args.jobs,
        )
    except IngestError as exc:
        raise CliError(str(exc)) from None
    except WorkerDied as exc:
        raise CliError(f"{exc}; try fewer --jobs if memory is short", EXIT_FAIL) from None
    if report.documents == 0 and len(report.skipped) == 1:
        raise CliError(report.skipped[0])  # one file, one problem: say just that
    for line in report.skipped:
        print(f"jiceng: warning: skipped {line}", file=sys.stderr)
    if report.documents == 0:
        raise CliError(f"no readable document among {len(paths)} input files")
    write_atomic(out, data)
    if not args.quiet:
        _print_report(report, out)
    return 0


def _print_report(report, out: Path) -> None:
    err = sys.stderr
    print(f"wrote {out} ({report.triples} triples) in {report.seconds:.1f} s", file=err)
    print(
        f"  documents {report.documents}, sentences {report.sentences}, "
        f"duplicate paragraphs dropped {report.duplicates_dropped}, "
        f"files skipped {len(report.skipped)}",
        file=err,
    )
    print("  entities: " + ", ".join(f"{k} {v}" for k, v in sorted(report.entities.items())),
          file=err)  # fmt: skip
    print("  facts: " + ", ".join(f"{k} {v}" for k, v in sorted(report.facts.items())), file=err)


# --------------------------------------------------------------------------- query, stats


def _load(data: str):
    from server.offline import QueryError, load_store

    try:
        return load_store(Path(data))
    except QueryError as exc:
        raise CliError(str(exc)) from None


def cmd_query(args: argparse.Namespace) -> int:
    from server import offline

    store = _load(args.data)
    try:
        if args.canned:
            params = dict(_param(p) for p in args.param)
            text = offline.run_canned(store, args.canned, params, args.format)
        else:
            query = args.query
            if args.query_file:
                try:
                    query = Path(args.query_file).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise CliError(f"{args.query_file}: cannot read: {exc}") from None
            text = offline.run_query(store, query, args.format)
    except offline.QueryError as exc:
        raise CliError(str(exc), EXIT_FAIL) from None
    sys.stdout.write(text)
    return 0


def _param(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise CliError(f"--param {text!r}: expected NAME=VALUE", EXIT_USAGE)
    key, value = text.split("=", 1)
    return key.strip(), value


STATS_CLASSES = """
SELECT ?class (COUNT(DISTINCT ?s) AS ?count) WHERE { ?s a ?class }
GROUP BY ?class ORDER BY DESC(?count) ?class
"""
STATS_PROPERTIES = """
SELECT ?property (COUNT(*) AS ?count) WHERE { ?s ?property ?o }
GROUP BY ?property ORDER BY DESC(?count) ?property
"""


def cmd_stats(args: argparse.Namespace) -> int:
    from server import offline

    store = _load(args.data)
    count = store.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    print(f"triples: {next(iter(count))['n'].value}")  # the default graph: the union
    print("\nclasses")
    sys.stdout.write(offline.run_query(store, STATS_CLASSES, args.format))
    print("\nproperties")
    sys.stdout.write(offline.run_query(store, STATS_PROPERTIES, args.format))
    return 0


# --------------------------------------------------------------------------- validate, eval


def cmd_validate(args: argparse.Namespace) -> int:
    from kg.validate import validate

    data = Path(args.data)
    if not data.is_file():
        raise CliError(f"{data}: no such file")
    conforms, report = validate(data)
    print(report)
    return 0 if conforms else EXIT_FAIL


def cmd_eval(args: argparse.Namespace) -> int:
    from kg.evaluate import evaluate, format_report

    gold = Path(args.gold)
    if not gold.is_dir():
        raise CliError(f"{gold}: not a directory of gold files")
    try:
        result = evaluate(gold, Path(args.seeds))
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise CliError(f"{gold}: {exc}") from None
    print(format_report(result, errors=args.errors))
    if args.json:
        import json

        write_atomic(Path(args.json), json.dumps(result, ensure_ascii=False, indent=1).encode())
    return 0 if result["passed"] else EXIT_FAIL


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    from server.run import serve

    data = Path(args.data)
    if args.backend == "embedded" and not data.is_file():
        raise CliError(f"{data}: no such file (build it first: jiceng build seeds -o {data})")
    serve(
        data,
        host=args.host,
        port=args.port,
        store_dir=Path(args.store) if args.store else None,
        update_token=args.update_token or os.environ.get("JICENG_UPDATE_TOKEN"),
        timeout=args.timeout,
        max_rows=args.max_rows,
        backend=args.backend,
        endpoint=args.endpoint,
        update_endpoint=args.update_endpoint,
        graph_store=args.graph_store,
        default_graph=args.default_graph,
        refresh=args.refresh,
        reload_dirs=[Path(d) for d in args.reload_dir],
    )
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from server.gsp import LoadError, load

    try:
        summary = load(args.to, Path(args.dump), graph=args.graph)
    except LoadError as exc:
        raise CliError(str(exc), EXIT_INPUT if exc.input else EXIT_FAIL) from None
    if not args.quiet:
        count = f", {summary.triples} triples" if summary.triples is not None else ""
        print(f"loaded {args.dump} into {summary.url}: {len(summary.graphs)} graph(s)"
              f"{count} in {summary.seconds:.1f} s", file=sys.stderr)  # fmt: skip
    return 0


# --------------------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jiceng", description="Build and serve the Jiceng knowledge graph."
    )
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build the graph from articles")
    b.add_argument("inputs", nargs="+", help="files, directories (*.txt inside) or globs")
    b.add_argument("-o", "--output", required=True, help="output file (format from extension)")
    b.add_argument("--format", choices=list(FORMATS), help="output format")
    b.add_argument("--base", help=f"IRI base for resources (default {iris.RESOURCE})")
    b.add_argument("--strict", action="store_true", help="a bad input file is fatal")
    b.add_argument("-j", "--jobs", type=int, default=1, help="build in N processes")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    b.set_defaults(func=cmd_build)

    q = sub.add_parser("query", help="run SPARQL against a dump, without a server")
    q.add_argument("--data", required=True)
    group = q.add_mutually_exclusive_group(required=True)
    group.add_argument("--canned", help="name of a canned query in queries/")
    group.add_argument("--query", help="SPARQL text")
    group.add_argument("--query-file", help="file holding SPARQL")
    q.add_argument("--param", action="append", default=[], help="canned parameter NAME=VALUE")
    q.add_argument("--format", default="table", choices=["csv", "tsv", "json", "table"])
    q.set_defaults(func=cmd_query)

    s = sub.add_parser("stats", help="counts per class and property")
    s.add_argument("--data", required=True)
    s.add_argument("--format", default="table", choices=["csv", "tsv", "json", "table"])
    s.set_defaults(func=cmd_stats)

    v = sub.add_parser("validate", help="check a dump against the SHACL shapes")
    v.add_argument("--data", required=True)
    v.set_defaults(func=cmd_validate)

    e = sub.add_parser("eval", help="precision/recall against hand-annotated gold")
    e.add_argument("--gold", default="tests/gold")
    e.add_argument("--seeds", default="seeds", help="directory of the gold's articles")
    e.add_argument("--errors", action="store_true", help="list every miss and false hit")
    e.add_argument("--json", default="build/eval.json", help="write figures here as JSON")
    e.set_defaults(func=cmd_eval)

    r = sub.add_parser("serve", help="serve the graph over SPARQL and HTML")
    r.add_argument("--data", default="build/kg.ttl")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8000)
    r.add_argument("--store", help="on-disk store directory (reused across restarts)")
    r.add_argument("--update-token", help="allow SPARQL Update with this bearer token")
    r.add_argument("--timeout", type=float, default=10.0, help="per-query time limit (s)")
    r.add_argument("--max-rows", type=int, default=10000, help="row limit per result")
    r.add_argument("--backend", choices=["embedded", "sparql"], default="embedded",
                   help="embedded store (default) or a remote SPARQL 1.1 store")  # fmt: skip
    r.add_argument("--endpoint", help="remote SPARQL query endpoint (--backend sparql)")
    r.add_argument("--update-endpoint", help="remote SPARQL update endpoint (with a token)")
    r.add_argument("--graph-store", help="remote Graph Store Protocol endpoint (dumps)")
    r.add_argument("--default-graph", metavar="IRI", help="remote graph holding the data")
    r.add_argument("--refresh", type=float, default=60.0, metavar="S",
                   help="remote: re-read names and counts every S seconds (0: never)")  # fmt: skip
    r.add_argument("--reload-dir", action="append", default=[], metavar="DIR",
                   help="POST /admin/reload?data=FILE may load dumps under DIR")  # fmt: skip
    r.set_defaults(func=cmd_serve)

    ld = sub.add_parser("load", help="push a dump into a store (SPARQL Graph Store Protocol)")
    ld.add_argument("dump", help=".ttl/.nt (one graph) or .trig/.nq (one PUT per graph)")
    ld.add_argument("--to", required=True, metavar="URL", help="Graph Store Protocol endpoint")
    ld.add_argument("--graph", metavar="IRI", help="graph for triples (default: ?default)")
    ld.add_argument("-q", "--quiet", action="store_true", help="no summary")
    ld.set_defaults(func=cmd_load)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        return _fail(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}", EXIT_FAIL)


if __name__ == "__main__":
    sys.exit(main())
