"""Segmentation benchmark: bare pkuseg vs kg.segment, side by side.

Every measurement runs in a fresh subprocess (load times and peak RSS are per process):

* pkuseg: model load time and peak RSS, throughput (one ``cut`` per seed line, and per document);
* ours, cold: empty cache dir -> ``Segmenter()`` builds the cache (in a child process), then one
  pass over the seed documents; peak RSS of the process and of the cache-building child;
* ours, warm: load time, RSS after load and after segmenting, the same throughputs (+ batched);
* spaCy pipeline (cold and warm): spaCy + rdflib imported, ``make_nlp()``, every seed line through
  the tokenizer: the segmentation share of a real build's time and memory.

Throughputs repeat the work until it takes >= 1 s. The model files are read once beforehand so
that both sides start from a warm page cache. Prints a table; writes build/bench_segment.json.

    python benchmarks/bench_segment.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench_segment.json"

PRELUDE = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    T0 = time.perf_counter()

    def status(key):
        try:
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def rss():
        return round(status("VmRSS"), 1)

    def peak():
        return round(status("VmHWM"), 1)

    def child_peak():
        return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)

    DOCS = [p.read_text(encoding="utf-8") for p in sorted(Path({root!r}, "seeds").glob("*.txt"))]
    LINES = [line for d in DOCS for line in d.splitlines()]
    CHARS = sum(map(len, DOCS))

    def throughput(fn):
        fn()  # warm-up
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= 1.0:
                return round(n * CHARS / elapsed)

    R = {{"chars": CHARS, "lines": len(LINES), "documents": len(DOCS)}}
    """
)

PKUSEG = """
t = time.perf_counter(); import pkuseg; R["import_s"] = round(time.perf_counter() - t, 3)
R["rss_after_import_mb"] = rss()
t = time.perf_counter(); seg = pkuseg.pkuseg(); R["load_s"] = round(time.perf_counter() - t, 3)
R["rss_after_load_mb"] = rss()
R["chars_per_s_lines"] = throughput(lambda: [seg.cut(x) for x in LINES])
R["chars_per_s_documents"] = throughput(lambda: [seg.cut(d) for d in DOCS])
R["peak_rss_mb"] = peak()
"""

OURS_COLD = """
t = time.perf_counter(); from kg import segment; R["import_s"] = round(time.perf_counter() - t, 3)
R["rss_after_import_mb"] = rss()
t = time.perf_counter(); seg = segment.Segmenter(); R["load_s"] = round(time.perf_counter() - t, 3)
t = time.perf_counter(); [seg.cut(d) for d in DOCS]
R["first_pass_s"] = round(time.perf_counter() - t, 3)
R["load_and_first_pass_s"] = round(R["load_s"] + R["first_pass_s"], 3)
R["peak_rss_mb"] = peak()
R["cache_builder_peak_rss_mb"] = child_peak()
"""

OURS_WARM = """
t = time.perf_counter(); from kg import segment; R["import_s"] = round(time.perf_counter() - t, 3)
R["rss_after_import_mb"] = rss()
t = time.perf_counter(); seg = segment.Segmenter(); R["load_s"] = round(time.perf_counter() - t, 3)
R["rss_after_load_mb"] = rss()
t = time.perf_counter(); [seg.cut(d) for d in DOCS]
R["first_pass_s"] = round(time.perf_counter() - t, 3)
R["load_and_first_pass_s"] = round(R["load_s"] + R["first_pass_s"], 3)
R["rss_after_first_pass_mb"] = rss()
R["chars_per_s_lines"] = throughput(lambda: [seg.cut(x) for x in LINES])
R["chars_per_s_documents"] = throughput(lambda: [seg.cut(d) for d in DOCS])
R["chars_per_s_batched_lines"] = throughput(lambda: seg.cut_many(LINES))
R["peak_rss_mb"] = peak()
cache = Path(seg._model.path)
R["cache_dir_mb"] = round(sum(f.stat().st_size for f in cache.iterdir()) / 2**20, 1)
"""

PIPELINE = """
import rdflib, spacy  # what the KG build process imports anyway
R["rss_after_spacy_rdflib_mb"] = rss()
from kg.segment import make_nlp
t = time.perf_counter(); nlp = make_nlp(); R["make_nlp_s"] = round(time.perf_counter() - t, 3)
t = time.perf_counter(); docs = [nlp(x) for x in LINES]
R["tokenize_s"] = round(time.perf_counter() - t, 3)
R["total_s"] = round(time.perf_counter() - T0, 3)
R["tokens"] = sum(len(d) for d in docs)
R["peak_rss_mb"] = peak()
R["cache_builder_peak_rss_mb"] = child_peak()
"""


def run(code: str, cache_dir: str) -> dict:
    env = dict(os.environ, JICENG_CACHE_DIR=cache_dir)
    script = PRELUDE.format(root=str(ROOT)) + textwrap.dedent(code) + "\nprint(json.dumps(R))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_page_cache() -> None:
    import importlib.util

    pkg = Path(importlib.util.find_spec("pkuseg").origin).parent
    for f in [*(pkg / "models" / "default").iterdir(), pkg / "dicts" / "default.pkl"]:
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def main() -> None:
    warm_page_cache()
    with tempfile.TemporaryDirectory(prefix="bench-seg-") as tmp:
        cache = str(Path(tmp) / "cache")
        results = {
            "pkuseg": run(PKUSEG, cache),
            "ours_cold": run(OURS_COLD, cache),  # builds the cache
            "ours_warm": run(OURS_WARM, cache),
            "spacy_pipeline_cold": run(PIPELINE, str(Path(tmp) / "cache2")),
            "spacy_pipeline_warm": run(PIPELINE, str(Path(tmp) / "cache2")),
        }
    p, cold, warm = results["pkuseg"], results["ours_cold"], results["ours_warm"]
    results["summary"] = {
        "cold_load_plus_pass_vs_bare_load": round(cold["load_and_first_pass_s"] / p["load_s"], 2),
        "warm_load_speedup": round(p["load_s"] / max(warm["load_s"], 1e-6), 1),
        "throughput_ratio_lines": round(warm["chars_per_s_lines"] / p["chars_per_s_lines"], 2),
        "throughput_ratio_documents": round(
            warm["chars_per_s_documents"] / p["chars_per_s_documents"], 2
        ),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nwritten {OUT.relative_to(ROOT)}")


def print_table(r: dict) -> None:
    p, cold, warm = r["pkuseg"], r["ours_cold"], r["ours_warm"]
    pc, pw = r["spacy_pipeline_cold"], r["spacy_pipeline_warm"]
    rows = [
        ("text", f"{p['chars']} chars, {p['lines']} lines, {p['documents']} documents", ""),
        ("import (s)", p["import_s"], warm["import_s"]),
        ("model load, warm cache (s)", p["load_s"], warm["load_s"]),
        ("model load, cold: builds cache (s)", "", cold["load_s"]),
        ("cold load + 1 pass over seeds (s)", "", cold["load_and_first_pass_s"]),
        (
            "RSS after import (MB) [ours: + spaCy]",
            p["rss_after_import_mb"],
            warm["rss_after_import_mb"],
        ),
        ("RSS after load (MB)", p["rss_after_load_mb"], warm["rss_after_load_mb"]),
        ("RSS after 1 pass (MB)", "", warm["rss_after_first_pass_mb"]),
        ("peak RSS, warm process (MB)", p["peak_rss_mb"], warm["peak_rss_mb"]),
        ("peak RSS, cold process (MB)", "", cold["peak_rss_mb"]),
        ("peak RSS, cache builder child (MB)", "", cold["cache_builder_peak_rss_mb"]),
        ("chars/s, cut() per line", p["chars_per_s_lines"], warm["chars_per_s_lines"]),
        ("chars/s, cut() per document", p["chars_per_s_documents"], warm["chars_per_s_documents"]),
        ("chars/s, cut_many(lines)", "", warm["chars_per_s_batched_lines"]),
        ("cache on disk (MB)", "", warm["cache_dir_mb"]),
        ("spaCy+rdflib+make_nlp, all lines: cold (s)", "", pc["total_s"]),
        (
            "  peak RSS cold (MB) / builder child",
            "",
            f"{pc['peak_rss_mb']} / {pc['cache_builder_peak_rss_mb']}",
        ),
        ("spaCy+rdflib+make_nlp, all lines: warm (s)", "", pw["total_s"]),
        ("  peak RSS warm (MB)", "", pw["peak_rss_mb"]),
    ]
    w = max(len(k) for k, _, _ in rows)
    print(f"{'':{w}}  {'pkuseg':>12}  {'kg.segment':>12}")
    for k, a, b in rows:
        if k == "text":
            print(f"{k:{w}}  {a}")
        else:
            print(f"{k:{w}}  {a!s:>12}  {b!s:>12}")
    s = r["summary"]
    print(
        f"\ncold load + pass = {s['cold_load_plus_pass_vs_bare_load']}x bare pkuseg load; "
        f"warm load {s['warm_load_speedup']}x faster; throughput x{s['throughput_ratio_lines']} "
        f"(per line), x{s['throughput_ratio_documents']} (per document)"
    )


if __name__ == "__main__":
    main()
