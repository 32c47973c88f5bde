"""Scale benchmark: load time, memory and canned-query latency against graph size.

Graphs of 100k, 1M and 5M triples are generated from the seed graph by
``gen_graph.py`` (the seed graph replicated under renamed IRIs and names, so class and
property proportions are the seeds').  For each size, every measurement in a fresh
subprocess:

* embedded: pyoxigraph in-memory ``Store.bulk_load`` of the dump (time, RSS, peak RSS),
  then the queries ``jiceng serve`` runs at start-up (name index, counts, partitions),
  timed one by one with the pickling of their rows: what a start costs besides the load;
* ``jiceng serve --data`` (in-memory store): time to first answer (spawn → first 200),
  RSS and peak RSS of the server process, PSS of the server and its query workers;
  then each canned query through its URL: the first request (for queries without
  parameters the server computes the answer ahead, at start-up, so this is usually a
  cache hit; with a parameter nothing is cached yet), repeated GETs (served from the
  server's result cache), repeated conditional GETs (304), and the same SPARQL through
  ``/sparql`` repeated, each time as a new text (a numbered comment), so that every
  repetition is evaluated: the uncached path;
* ``jiceng serve --store DIR``: first start (builds the RocksDB store) and a restart
  (opens it without parsing and reads back the start-up summary saved beside it),
  time to first answer and memory; the start-up queries the summary saves are timed on
  the store like the embedded ones.

Targets at 1M triples: load <= 10 s (or instant from an on-disk store), canned-query
p50 <= 50 ms, RSS <= 2 GB.  Prints a table, writes build/bench_scale.json and draws
benchmarks/scale.png.

    python benchmarks/bench_scale.py [--sizes 100k,1m,5m] [--reps 15] [--budget 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import RESULTS_JSON, ServerFailed, jiceng_server, memory  # noqa: E402
from gen_graph import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench_scale.json"
PLOT = ROOT / "benchmarks" / "scale.png"
SEED = ROOT / "build" / "kg.ttl"
TARGETS = {"load_s": 10.0, "p50_ms": 50.0, "rss_mb": 2048.0, "at": 1_000_000}

# Parameter values for the "one entity" variants, picked from the seed graph (copy 0 of
# every generated graph keeps the seed names, so each still names exactly one entity).
PICKS = {
    "place": """PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX jc: <https://w3id.org/jiceng/ontology#>
SELECT ?e (COUNT(?st) AS ?n) WHERE {
  VALUES ?t { jc:District jc:County jc:CountyLevelCity jc:Street jc:Town jc:Township }
  ?e a ?t . ?st rdf:subject|rdf:object ?e } GROUP BY ?e ORDER BY DESC(?n) ?e LIMIT 1""",
    "district": """PREFIX jc: <https://w3id.org/jiceng/ontology#>
SELECT ?e (COUNT(?x) AS ?n) WHERE { ?x jc:partOf+ ?e . ?e a jc:District }
GROUP BY ?e ORDER BY DESC(?n) ?e LIMIT 1""",
    "adopter": """PREFIX jc: <https://w3id.org/jiceng/ontology#>
SELECT ?e (COUNT(?p) AS ?n) WHERE { ?e jc:adopts ?p } GROUP BY ?e ORDER BY DESC(?n) ?e LIMIT 1""",
    "about": """PREFIX jc: <https://w3id.org/jiceng/ontology#>
SELECT ?e (COUNT(?s) AS ?n) WHERE { ?s jc:about ?e } GROUP BY ?e ORDER BY DESC(?n) ?e LIMIT 1""",
}
# canned query → (parameter, pick) for its one-entity variant
ONE = {
    "entity": ("name", "place"),
    "evidence": ("name", "place"),
    "party-secretaries": ("district", "district"),
    "temporary-party-branches": ("district", "district"),
    "places": ("within", "district"),
    "programmes": ("adopter", "adopter"),
    "statistics": ("about", "about"),
}


def run_child(code: str, *args: str, timeout: float = 1800) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


PICK = """
import json, sys
import pyoxigraph as ox
store = ox.Store(); store.bulk_load(path=sys.argv[1], format=ox.RdfFormat.TURTLE)
picks = json.loads(sys.argv[2])
out = {}
for key, q in picks.items():
    (e,) = [r["e"] for r in store.query(q)]
    label = [r[0].value for r in store.query(
        f'SELECT ?l WHERE {{ <{e.value}> <http://www.w3.org/2000/01/rdf-schema#label> ?l '
        'FILTER(LANG(?l) = "zh") }')]
    out[key] = {"iri": e.value, "label": label[0]}
print(json.dumps(out, ensure_ascii=False))
"""

# The embedded load, then what ``jiceng serve`` does at start-up besides loading
# (server/store.py: sha256 of the dump; server/backend.py Backend.refresh: the name
# index and the counts, run in a query worker and pickled back to the server).
STARTUP = """
import json, pickle, sys, time
from pathlib import Path
import pyoxigraph as ox
from server import backend, canned, jobs, store

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)

dump, mode = Path(sys.argv[1]), sys.argv[2]
R = {}
t = time.perf_counter(); store.sha256_file(dump); R["sha256_s"] = round(time.perf_counter() - t, 3)
t = time.perf_counter()
if mode == "memory":
    s = ox.Store(); s.bulk_load(path=str(dump), format=ox.RdfFormat.TURTLE)
    R["bulk_load_s"] = round(time.perf_counter() - t, 3)
    R["rss_mb"], R["peak_rss_mb"] = status("VmRSS"), status("VmHWM")
    R["triples"] = len(s)
else:  # a --store directory the server built: opened as a restart opens it
    loaded = store.load(dump, Path(sys.argv[3]))
    assert loaded.reused, "the store was rebuilt, not reused"
    s = ox.Store.read_only(str(loaded.path))
    R["open_s"] = round(time.perf_counter() - t, 3)
queries = {"name_index": canned.INDEX_QUERY, **backend.STATS_QUERIES,
           "class_partition": backend.CLASS_PARTITION,
           "property_partition": backend.PROPERTY_PARTITION}
R["startup_queries"] = {}
for name, q in queries.items():
    t = time.perf_counter(); reply = jobs.run_rows(s, {"query": q, "max_rows": 10**9})
    run = time.perf_counter() - t
    t = time.perf_counter(); blob = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    rows = pickle.loads(blob)["rows"]; ipc = time.perf_counter() - t
    entry = {"query_s": round(run, 3), "rows": len(rows), "pickle_s": round(ipc, 3),
             "pickle_mb": round(len(blob) / 2**20, 1)}
    if name == "name_index":
        t = time.perf_counter(); canned.NameIndex(rows)
        entry["build_index_s"] = round(time.perf_counter() - t, 3)
    R["startup_queries"][name] = entry
R["startup_queries_s"] = round(sum(
    sum(v for k, v in e.items() if k.endswith("_s")) for e in R["startup_queries"].values()), 3)
R["peak_rss_after_startup_mb"] = status("VmHWM")
print(json.dumps(R))
"""


# -- canned queries over HTTP --------------------------------------------------------------


def cases(base: str, picks: dict) -> list[dict]:
    """Every canned query with all rows (when it has no required parameter) and about one
    entity; with the SPARQL the server runs for each (the .rq text, VALUES-bound)."""
    import pyoxigraph as ox

    from server import canned
    from server.sparqltext import inject_values  # the server's own binding code

    patterns = {
        (q.name, p.var): [p.pattern] if p.pattern else []
        for q in canned.load_all(canned.QUERIES_DIR).values()
        for p in q.params
    }
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for q in c.get("/queries").json():
            text = c.get(f"/queries/{q['name']}.rq").text
            params = {p["name"]: p for p in q["params"]}
            if not any(p["required"] for p in q["params"]):
                out.append({"name": q["name"], "variant": "all", "params": {}, "sparql": text})
            if q["name"] in ONE:
                pname, pick = ONE[q["name"]]
                var = ("_" if params[pname]["required"] else "__") + pname + "_iri"
                value = {var: ox.NamedNode(picks[pick]["iri"])}
                sparql = inject_values(text, value, patterns[q["name"], var])
                out.append(
                    {
                        "name": q["name"],
                        "variant": "one",
                        "params": {pname: picks[pick]["label"]},
                        "sparql": sparql,
                    }
                )
    return out


def _timed(fn) -> tuple[float, httpx.Response]:
    t = time.perf_counter()
    r = fn()
    return (time.perf_counter() - t) * 1000, r


def repeat(fn, reps: int, budget: float) -> dict:
    """p50 over up to ``reps`` calls, stopping after ``budget`` seconds (at least 3 calls);
    one 503 (time limit) ends the series."""
    times, start, status = [], time.perf_counter(), 200
    while len(times) < reps and (len(times) < 3 or time.perf_counter() - start < budget):
        ms, r = _timed(fn)
        if r.status_code not in (200, 304):
            status = r.status_code
            break
        times.append(ms)
    out = {"n": len(times), "status": status}
    if times:
        out.update(p50_ms=round(statistics.median(times), 2), max_ms=round(max(times), 2))
    return out


def measure_canned(base: str, todo: list[dict], reps: int, budget: float) -> list[dict]:
    post = {"Content-Type": "application/sparql-query", "Accept": RESULTS_JSON}
    results = []
    with httpx.Client(base_url=base, timeout=120) as c:
        for case in todo:
            path = f"/queries/{case['name']}.json"

            def get(headers=None, path=path, case=case):
                return c.get(path, params=case["params"], headers=headers)

            ms, first = _timed(get)  # nothing cached yet: the server's first run
            row = {k: case[k] for k in ("name", "variant", "params")}
            row["first"] = {"ms": round(ms, 2), "status": first.status_code}
            if first.status_code == 200:
                body = first.json()
                row["rows"] = len(body["results"]["bindings"])
                row["truncated"] = first.headers.get("x-jiceng-truncated") == "true"
                row["bytes"] = len(first.content)
                etag = first.headers["etag"]
                row["cached"] = repeat(get, reps, budget)
                inm = {"If-None-Match": etag}
                row["not_modified"] = repeat(lambda inm=inm: get(inm), reps, budget)
                # /sparql caches answers too: each repetition is a new text (a numbered
                # comment), so every one is evaluated.
                texts = (f"{case['sparql']}\n# {n}".encode() for n in itertools.count())
                row["uncached"] = repeat(
                    lambda texts=texts: c.post("/sparql", content=next(texts), headers=post),
                    reps,
                    budget,
                )
            results.append(row)
            print(
                f"    {case['name']} {case['variant']}: first {row['first']['ms']:.0f} ms "
                f"({row['first']['status']})",
                file=sys.stderr,
            )
    return results


# -- one size ------------------------------------------------------------------------------


def one_size(label: str, target: int, work: Path, picks: dict, args: argparse.Namespace) -> dict:
    print(f"{label}: generating", file=sys.stderr)
    dump = work / f"kg-{label}.ttl"
    r: dict = {"label": label, "graph": generate(SEED, target, dump)}
    print(f"{label}: {r['graph']['triples']} triples; embedded load", file=sys.stderr)
    r["embedded"] = run_child(STARTUP, str(dump), "memory")

    print(f"{label}: jiceng serve (in-memory)", file=sys.stderr)
    try:
        with jiceng_server(dump, work) as (base, proc, ready):
            r["serve_memory"] = {"ready_s": round(ready, 2), "after_load": memory(proc.pid)}
            if not args.no_queries:
                todo = cases(base, picks)
                r["canned"] = measure_canned(base, todo, args.reps, args.budget)
                r["serve_memory"]["after_queries"] = memory(proc.pid)
            r["serve_memory"]["sampled"] = proc.sampler.stop()
    except ServerFailed as exc:  # recorded, and the other measurements still run
        print(f"{label}: {exc}", file=sys.stderr)
        r["serve_memory"] = {"error": str(exc)}

    store = work / f"store-{label}"
    shutil.rmtree(store, ignore_errors=True)
    for key in ("serve_store_first", "serve_store_restart"):
        print(f"{label}: jiceng serve --store ({key})", file=sys.stderr)
        try:
            with jiceng_server(dump, work, store=store) as (base, proc, ready):
                r[key] = {"ready_s": round(ready, 2), "after_load": memory(proc.pid)}
                r[key]["sampled"] = proc.sampler.stop()
        except ServerFailed as exc:
            print(f"{label}: {exc}", file=sys.stderr)
            r[key] = {"error": str(exc)}
    if "error" not in r["serve_store_restart"]:
        r["store_restart_startup"] = run_child(STARTUP, str(dump), "store", str(store))
        files = [f for f in store.rglob("*") if f.is_file()]
        r["store_mb"] = round(sum(f.stat().st_size for f in files) / 2**20)
    shutil.rmtree(store, ignore_errors=True)
    if not args.keep:
        dump.unlink()
    return r


SIZES = {"100k": 100_000, "1m": 1_000_000, "5m": 5_000_000}


def parse_size(s: str) -> tuple[str, int]:
    s = s.strip().lower()
    if s in SIZES:
        return s, SIZES[s]
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return s, int(float(s.rstrip("km")) * mult)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100k,1m,5m", help="e.g. 100k,1m,5m")
    ap.add_argument("--reps", type=int, default=15, help="max repetitions per measurement")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per measurement")
    ap.add_argument("--work", type=Path, default=None, help="where graphs go (default: tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated graphs")
    ap.add_argument("--no-queries", action="store_true", help="load and memory only")
    args = ap.parse_args()
    if not SEED.is_file():
        raise SystemExit(f"{SEED}: no such file (jiceng build seeds -o build/kg.ttl)")
    t0 = time.perf_counter()
    result: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "targets": TARGETS,
        "picks": run_child(PICK, str(SEED), json.dumps(PICKS)),
        "sizes": [],
    }
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
        work = Path(tmp.name)
    else:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)
    try:
        for s in args.sizes.split(","):
            label, target = parse_size(s)
            result["sizes"].append(one_size(label, target, work, result["picks"], args))
            OUT.parent.mkdir(exist_ok=True)  # written after each size: a partial run counts
            OUT.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    finally:
        if tmp is not None:
            tmp.cleanup()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    report(result)
    plot(result)
    print(f"\nwritten {OUT.relative_to(ROOT)}, {PLOT.relative_to(ROOT)}")


# -- report ------------------------------------------------------------------------------


def _p50(row: dict, key: str) -> str:
    m = row.get(key)
    if not m:
        return f"({row['first']['status']})"
    if "p50_ms" not in m:
        return f"({m['status']})"
    return f"{m['p50_ms']:.1f}" + ("" if m["status"] == 200 else f"({m['status']})")


def get(d: dict, *path: str) -> float:
    """A figure from the nested results, NaN where the measurement failed or was skipped."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return float("nan")
        d = d[key]
    return d  # type: ignore[return-value]


def report(r: dict) -> None:
    print(f"\ntargets at 1M triples: load <= {TARGETS['load_s']:g} s (or instant from a store), "
          f"canned p50 <= {TARGETS['p50_ms']:g} ms, RSS <= {TARGETS['rss_mb']:g} MB")  # fmt: skip
    print("ox RSS: RSS of pyoxigraph's in-memory store alone; PSS: jiceng serve's process "
          "tree after start;\npeak PSS: the largest tree PSS sampled (every 0.5 s) while it "
          "ran; max proc: largest VmHWM of one process\n")  # fmt: skip
    head = (
        f"{'triples':>9}{'bulk_load s':>12}{'serve s':>9}{'store 1st s':>12}{'restart s':>10}"
        f"{'ox RSS':>9}{'PSS MB':>8}{'peak PSS':>9}{'max proc':>9}{'restart PSS':>12}"
        f"{'restart: startup q s':>22}"
    )
    print(head)
    for s in r["sizes"]:
        mem = ("serve_memory", "after_load")
        print(
            f"{s['graph']['triples']:>9}{get(s, 'embedded', 'bulk_load_s'):>12}"
            f"{get(s, 'serve_memory', 'ready_s'):>9}{get(s, 'serve_store_first', 'ready_s'):>12}"
            f"{get(s, 'serve_store_restart', 'ready_s'):>10}{get(s, 'embedded', 'rss_mb'):>9.0f}"
            f"{get(s, *mem, 'tree_pss_mb'):>8.0f}"
            f"{get(s, 'serve_memory', 'sampled', 'peak_tree_pss_mb'):>9.0f}"
            f"{get(s, *mem, 'peak_rss_mb'):>9.0f}"
            f"{get(s, 'serve_store_restart', 'after_load', 'tree_pss_mb'):>12.0f}"
            f"{get(s, 'store_restart_startup', 'startup_queries_s'):>22}"
        )
        for key in ("serve_memory", "serve_store_first", "serve_store_restart"):
            if "error" in s.get(key, {}):
                print(f"  {key} failed: {s[key]['error'].splitlines()[0]}")
    names = list(
        dict.fromkeys((c["name"], c["variant"]) for s in r["sizes"] for c in s.get("canned", []))
    )
    if not names:
        return
    print("\ncanned queries via their URL, p50 ms: uncached (/sparql, a new text each time) "
          "/ first URL request / cached GET / 304  (status in parentheses)")  # fmt: skip
    print(f"{'query':34}" + "".join(f"{s['label']:>34}" for s in r["sizes"]))
    for name, variant in names:
        cells = []
        for s in r["sizes"]:
            row = _row(s, name, variant)
            if row is None:
                cells.append("-")
                continue
            first = f"{row['first']['ms']:.0f}"
            cells.append(
                f"{_p50(row, 'uncached')}/{first}/{_p50(row, 'cached')}/{_p50(row, 'not_modified')}"
            )
        print(f"{name + ' ' + variant:34}" + "".join(f"{c:>34}" for c in cells))


def _row(size: dict, name: str, variant: str) -> dict | None:
    return next(
        (c for c in size.get("canned", []) if (c["name"], c["variant"]) == (name, variant)), None
    )


def plot(r: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = r["sizes"]
    x = [s["graph"]["triples"] for s in sizes]
    fig, axes = plt.subplots(2, 2, figsize=(12, 10))
    (a_load, a_mem), (a_unc, a_cached) = axes

    def series(ax, path, label, **kw):
        ax.plot(x, [get(s, *path) for s in sizes], marker="o", label=label, **kw)

    series(a_load, ("embedded", "bulk_load_s"), "pyoxigraph bulk_load (in memory)")
    series(a_load, ("serve_memory", "ready_s"), "jiceng serve --data: first answer")
    series(a_load, ("serve_store_first", "ready_s"), "--store DIR, first start (builds it)")
    series(a_load, ("serve_store_restart", "ready_s"), "--store DIR, restart")
    a_load.axhline(TARGETS["load_s"], color="red", ls=":", label="target at 1M")
    a_load.set_ylabel("seconds")
    a_load.set_title("load / time to first answer")

    series(a_mem, ("embedded", "rss_mb"), "pyoxigraph in-memory store alone: RSS")
    series(a_mem, ("serve_memory", "after_load", "tree_pss_mb"), "jiceng serve: PSS, all processes")
    series(a_mem, ("serve_memory", "sampled", "peak_tree_pss_mb"), "jiceng serve: peak PSS sampled")
    series(
        a_mem, ("serve_memory", "after_load", "peak_rss_mb"), "jiceng serve: largest process peak"
    )
    series(a_mem, ("serve_store_restart", "after_load", "tree_pss_mb"), "--store restart: PSS")
    a_mem.axhline(TARGETS["rss_mb"], color="red", ls=":", label="target at 1M")
    a_mem.set_ylabel("MB")
    a_mem.set_title("memory after start")

    names = list(
        dict.fromkeys((c["name"], c["variant"]) for s in sizes for c in s.get("canned", []))
    )
    colours = {n: f"C{i}" for i, n in enumerate(dict.fromkeys(n for n, _ in names))}
    limit_ms = 10_000.0  # the server's time limit: a stopped query is drawn there
    for ax, key, title in (
        (a_unc, "uncached", "canned SPARQL via /sparql, a new text each time (no cache), p50"),
        (a_cached, "not_modified", "canned query URLs, conditional GET (304), p50"),
    ):
        for name, variant in names:
            ys = []
            for s in sizes:
                row = _row(s, name, variant)
                if row is None:
                    ys.append(float("nan"))
                elif row["first"]["status"] == 503 or get(row, key, "status") == 503:
                    ys.append(limit_ms)
                else:
                    ys.append(get(row, key, "p50_ms"))
            style = "-" if variant == "all" else "--"  # one colour per query
            ax.plot(x, ys, style, marker="o", color=colours[name], label=f"{name} ({variant})")
        ax.axhline(TARGETS["p50_ms"], color="red", ls=":", label="target at 1M")
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize=10)
    a_unc.axhline(limit_ms, color="black", lw=0.5, ls="--", label="time limit (503)")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axvline(TARGETS["at"], color="gray", lw=0.5)
        ax.set_xlabel("triples")
        ax.grid(True, which="both", lw=0.3)
    a_load.legend(fontsize=7)
    a_mem.legend(fontsize=7)
    # the two query panels share one legend, under them
    handles, labels = a_unc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7)
    fig.suptitle(
        f"jiceng serve on graphs generated from the seed graph ({r['when'][:10]}, "
        f"{r['cpus']} CPUs); solid: all rows, dashed: one entity; "
        "a query stopped by the 10 s limit is drawn at 10 s",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(PLOT, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
