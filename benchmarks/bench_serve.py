"""Serving benchmark: ``jiceng serve`` beside an Oxigraph server on the same dump, in one run.

Absolute figures vary on a shared 2-core machine, so every target is a ratio of two
figures measured side by side, one right after the other:

* throughput (req/s) and latency (p50, p99) under ``wrk`` on loopback, for
  - a one-triple lookup through ``/sparql`` on both servers;
  - each canned query through its URL on jiceng (plain GET, and a conditional GET with
    ``If-None-Match`` answered 304), and its SPARQL text (``/queries/{name}.rq``, with
    the parameters bound by the server's own VALUES injection) through ``/sparql`` on
    both;
* the engine alone: the same query texts in-process on rdflib's in-memory ``Graph`` and
  on pyoxigraph's ``Store`` (same dump, same rows checked), each in a fresh subprocess.

Each server runs as its own process (Oxigraph: ``oxigraph load`` then
``oxigraph serve-read-only``); ``wrk`` runs with 2 threads, 16 connections, 5 s per
measurement by default.  Prints a table with the targets next to the figures and writes
build/bench_serve.json.  Needs ``wrk`` (Debian: ``apt-get install wrk``) and the
``oxigraph`` command (PyPI package ``oxigraph``).

    python benchmarks/bench_serve.py [--duration 5] [--threads 2] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench_serve.json"
RESULTS_JSON = "application/sparql-results+json"
TARGETS = {"url": 1.0, "lookup": 0.2, "engine": 15.0}

# The entity the parameterised canned queries are asked about: the place named in the
# most reified statements (picked from the data, so no name is hard-coded).
PICK_ENTITY = """
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX jc: <https://w3id.org/jiceng/ontology#>
SELECT ?e ?label (COUNT(?st) AS ?n) WHERE {
  VALUES ?t { jc:District jc:County jc:CountyLevelCity jc:Street jc:Town jc:Township }
  ?e a ?t ; rdfs:label ?label FILTER(LANG(?label) = "zh")
  ?st rdf:subject|rdf:object ?e .
} GROUP BY ?e ?label ORDER BY DESC(?n) ?e LIMIT 10
"""
# A one-triple lookup: a real subject and a single-valued predicate.
PICK_LOOKUP = """
PREFIX jc: <https://w3id.org/jiceng/ontology#>
SELECT ?s WHERE { ?s jc:adminCode ?o } ORDER BY ?s LIMIT 1
"""
ADMIN_CODE = "https://w3id.org/jiceng/ontology#adminCode"


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerFailed(Exception):
    """A server did not come up; the message ends with the tail of its log."""


def _tail(proc: subprocess.Popen, lines: int = 15) -> str:
    log = getattr(proc, "log", None)
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Poll ``url`` until it answers 200; seconds since ``proc`` was started."""
    start = getattr(proc, "started", time.perf_counter())
    deadline = time.perf_counter() + timeout
    with httpx.Client(timeout=timeout) as client:
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise ServerFailed(
                    f"server exited with status {proc.returncode}: {' '.join(proc.args)}\n"
                    + _tail(proc)
                )
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.02)  # 20 ms: the polling resolution of time-to-first-answer
    raise ServerFailed(f"no answer from {url} within {timeout:g} s\n" + _tail(proc))


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    fh = log.open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    proc.started = started  # type: ignore[attr-defined]
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts its workers down), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def children(pid: int) -> list[int]:
    """All descendants of ``pid`` (jiceng: the zygote and the query workers)."""
    out = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for kid in f.read().split():
                    out += [int(kid), *children(int(kid))]
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kb(path: str, key: str) -> int:
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def memory(pid: int) -> dict:
    """Memory of the server's process tree.  The graph is not held by the process we
    started (jiceng serve loads it in a child and forks query workers from that), so:
    ``tree_pss_mb`` (PSS summed over the tree: shared pages counted once, the honest
    total), ``tree_rss_mb`` (RSS summed: counts shared pages once per process),
    ``peak_rss_mb`` (the largest VmHWM of any one process), and each process."""
    procs = []
    for p in [pid, *children(pid)]:
        status, rollup = f"/proc/{p}/status", f"/proc/{p}/smaps_rollup"
        procs.append(
            {
                "pid": p,
                "rss_mb": round(_kb(status, "VmRSS") / 1024, 1),
                "peak_rss_mb": round(_kb(status, "VmHWM") / 1024, 1),
                "pss_mb": round(_kb(rollup, "Pss") / 1024, 1),
                "private_mb": round(
                    (_kb(rollup, "Private_Dirty") + _kb(rollup, "Private_Clean")) / 1024, 1
                ),
            }
        )
    return {
        "rss_mb": procs[0]["rss_mb"],
        "tree_pss_mb": round(sum(x["pss_mb"] for x in procs), 1),
        "tree_rss_mb": round(sum(x["rss_mb"] for x in procs), 1),
        "peak_rss_mb": max(x["peak_rss_mb"] for x in procs),
        "processes": procs,
    }


class Sampler:
    """The largest tree PSS / RSS seen, every ``every`` seconds while the server runs
    (start-up included): the peak of the whole tree, which no single VmHWM shows."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.peak_pss_mb = self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            tree = [self.pid, *children(self.pid)]
            pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in tree) / 1024
            rss = sum(_kb(f"/proc/{p}/status", "VmRSS") for p in tree) / 1024
            self.peak_pss_mb = max(self.peak_pss_mb, round(pss, 1))
            self.peak_rss_mb = max(self.peak_rss_mb, round(rss, 1))

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"peak_tree_pss_mb": self.peak_pss_mb, "peak_tree_rss_mb": self.peak_rss_mb}


@contextlib.contextmanager
def jiceng_server(dump: Path, log_dir: Path, store: Path | None = None, timeout: float = 600):
    """``jiceng serve`` on a free port; yields (base URL, process, seconds to first answer).
    ``proc.sampler`` follows the memory of its process tree from the start."""
    port = free_port()
    args = [sys.executable, "-m", "kg.cli", "serve", "--data", str(dump), "--port", str(port)]
    if store is not None:
        args += ["--store", str(store)]
    proc = spawn(args, log_dir / f"jiceng-{port}.log")
    proc.sampler = Sampler(proc.pid)  # type: ignore[attr-defined]
    try:
        base = f"http://127.0.0.1:{port}"
        ready = wait_http(f"{base}/sparql?query=ASK%7B%7D", proc, timeout)
        yield base, proc, ready
    finally:
        proc.sampler.stop()  # type: ignore[attr-defined]
        stop(proc)


def oxigraph_command() -> str:
    exe = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))
    if not Path(exe).exists():
        raise SystemExit("the oxigraph command is missing: pip install oxigraph")
    return exe


@contextlib.contextmanager
def oxigraph_server(dump: Path, work: Path):
    """``oxigraph load`` into a fresh directory, then ``serve-read-only`` on a free port."""
    exe, location = oxigraph_command(), work / "oxigraph-store"
    t = time.perf_counter()
    subprocess.run(
        [exe, "load", "--location", str(location), "--file", str(dump)],
        check=True,
        capture_output=True,
    )
    load_s = time.perf_counter() - t
    port = free_port()
    args = [exe, "serve-read-only", "--location", str(location), "--bind", f"127.0.0.1:{port}"]
    proc = spawn(args, work / "oxigraph.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/query?query=ASK%7B%7D", proc, 60)
        yield base, proc, load_s
    finally:
        stop(proc)


# -- wrk ---------------------------------------------------------------------------------

# One script per measurement.  wrk loads it once per thread, so it must be a real file
# (not a pipe); the body is read from a file to keep the query text byte-exact.
LUA = """
local body = {body}
if body then
  local f = assert(io.open(body, "rb")); wrk.body = f:read("*a"); f:close()
end
wrk.method = "{method}"
{headers}
{unique}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max))
end
"""

# Each request a text of its own (a comment numbered per thread and request): nothing
# can be answered from a result cache, on either server.
UNIQUE = """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, wrk.body .. "\\n# " .. id .. "-" .. n)
end
"""


class Wrk:
    def __init__(self, work: Path, duration: float, threads: int, connections: int) -> None:
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is missing: apt-get install wrk")
        self.work, self.n = work, 0
        self.duration, self.threads, self.connections = duration, threads, connections

    def run(
        self,
        url: str,
        method: str = "GET",
        body: str | None = None,
        headers: dict[str, str] | None = None,
        cpu: dict[str, list[int]] | None = None,
        unique: bool = False,
    ) -> dict:
        """One measurement; ``cpu`` names groups of server processes whose CPU time per
        request is reported (where the time goes, not just how much); ``unique``: every
        request's body is a new text (``UNIQUE``)."""
        self.n += 1
        body_file = "nil"
        if body is not None:
            path = self.work / f"body-{self.n}.rq"
            path.write_bytes(body.encode("utf-8"))
            body_file = json.dumps(str(path))
        lines = "\n".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items()
        )
        script = self.work / f"m{self.n}.lua"
        unique_lua = UNIQUE if unique else ""
        script.write_text(
            LUA.format(body=body_file, method=method, headers=lines, unique=unique_lua)
        )
        cmd = ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{self.duration:g}s"]
        cmd += ["--timeout", "15s", "-s", str(script), url]
        before = {g: [cpu_seconds(p) for p in pids] for g, pids in (cpu or {}).items()}
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=self.duration + 60)
        after = {g: [cpu_seconds(p) for p in pids] for g, pids in (cpu or {}).items()}
        m = re.search(r"^WRKJSON (.*)$", out.stdout, re.M)
        if out.returncode != 0 or m is None:
            raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
        raw = json.loads(m.group(1))
        seconds = raw["duration_us"] / 1e6
        errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
        spent = {
            g: sum(max(a - b, 0) for a, b in zip(after[g], before[g], strict=True)) for g in after
        }
        return {
            "req_per_s": round(raw["requests"] / seconds, 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p90_ms": round(raw["p90_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2),
            "requests": raw["requests"],
            "errors": errors,
            "mb_per_s": round(raw["bytes"] / seconds / 1e6, 1),
            "cpu_us_per_req": {
                g: round(t / max(raw["requests"], 1) * 1e6) for g, t in spent.items()
            },
        }


# -- what to ask -------------------------------------------------------------------------


def pick(dump: Path) -> dict:
    """Lookup triple and entity candidates, read from the dump itself."""
    import pyoxigraph as ox

    store = ox.Store()
    store.bulk_load(path=str(dump), format=ox.RdfFormat.TURTLE)
    (s,) = next(iter(store.query(PICK_LOOKUP)))
    lookup = f"SELECT ?o WHERE {{ <{s.value}> <{ADMIN_CODE}> ?o }}"
    entities = [(r["e"].value, r["label"].value) for r in store.query(PICK_ENTITY)]
    return {"lookup": lookup, "entities": entities}


def canned_cases(base: str, entities: list[tuple[str, str]]) -> list[dict]:
    """Each canned query: its URL (parameters by name, as a user types them) and the
    SPARQL text the server runs for it (the .rq text, parameters bound by VALUES)."""
    import pyoxigraph as ox

    from server.sparqltext import inject_values  # the server's own binding code

    with httpx.Client(base_url=base, timeout=60) as client:
        listing = client.get("/queries").json()
        cases = []
        for q in listing:
            required = [p["name"] for p in q["params"] if p["required"]]
            text = client.get(f"/queries/{q['name']}.rq").text
            params: dict[str, str] = {}
            bindings = {}
            if required:
                for iri, label in entities:  # the first name that resolves to one entity
                    params = {name: label for name in required}
                    if client.get(f"/queries/{q['name']}.json", params=params).status_code == 200:
                        bindings = {f"_{n}_iri": ox.NamedNode(iri) for n in required}
                        break
                else:
                    raise SystemExit(f"{q['name']}: no entity name resolves")
            path = f"/queries/{q['name']}.json" + ("?" + urlencode(params) if params else "")
            cases.append(
                {
                    "name": q["name"],
                    "params": params,
                    "path": path,
                    "sparql": inject_values(text, bindings) if bindings else text,
                }
            )
    return cases


def rows_of(body: bytes) -> int:
    return len(json.loads(body)["results"]["bindings"])


def check_same(case: dict, jiceng: str, oxigraph: str) -> dict:
    """One request of each kind before the load: same rows everywhere, and the headers."""
    post = {"Content-Type": "application/sparql-query", "Accept": RESULTS_JSON}
    with httpx.Client(timeout=60) as c:
        url = c.get(jiceng + case["path"])
        again = c.get(jiceng + case["path"], headers={"If-None-Match": url.headers.get("etag", "")})
        mine = c.post(jiceng + "/sparql", content=case["sparql"].encode(), headers=post)
        theirs = c.post(oxigraph + "/query", content=case["sparql"].encode(), headers=post)
    for r in (url, mine, theirs):
        r.raise_for_status()
    rows = {"url": rows_of(url.content), "jiceng": rows_of(mine.content)}
    rows["oxigraph"] = rows_of(theirs.content)
    if len(set(rows.values())) != 1:
        raise SystemExit(f"{case['name']}: different row counts {rows}")
    return {
        "rows": rows["url"],
        "bytes": len(url.content),
        "url_etag": "etag" in url.headers,
        "url_conditional_status": again.status_code,
        "sparql_etag": "etag" in mine.headers,
        "oxigraph_etag": "etag" in theirs.headers,
    }


# -- engine alone: rdflib vs pyoxigraph ----------------------------------------------------

ENGINE = """
import json, statistics, sys, time
engine, dump, queries = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
t = time.perf_counter()
if engine == "rdflib":
    import rdflib
    g = rdflib.Graph(); g.parse(dump, format="turtle")
    def run(q):
        return [tuple("" if v is None else str(v) for v in row) for row in g.query(q)]
else:
    import pyoxigraph as ox
    g = ox.Store(); g.bulk_load(path=dump, format=ox.RdfFormat.TURTLE)
    def run(q):
        return [tuple("" if v is None else v.value for v in row) for row in g.query(q)]
R = {"load_s": round(time.perf_counter() - t, 3), "queries": {}}
for name, q in queries.items():
    rows = run(q)  # warm-up
    times, start = [], time.perf_counter()
    # at least 3 runs and 1 s, at most 500 runs or 20 s (rdflib is slow)
    while len(times) < 3 or (time.perf_counter() - start < 1 and len(times) < 500):
        t = time.perf_counter(); run(q); times.append(time.perf_counter() - t)
        if time.perf_counter() - start > 20:
            break
    R["queries"][name] = {"ms": round(statistics.median(times) * 1000, 3), "runs": len(times),
                          "rows": len(rows), "digest": sorted(rows)}
print(json.dumps(R, ensure_ascii=False))
"""


def engines(dump: Path, queries: dict[str, str], work: Path) -> dict:
    qfile = work / "engine-queries.json"
    qfile.write_text(json.dumps(queries, ensure_ascii=False), "utf-8")
    out = {}
    for engine in ("pyoxigraph", "rdflib"):
        proc = subprocess.run(
            [sys.executable, "-c", ENGINE, engine, str(dump), str(qfile)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{engine} run failed:\n{proc.stderr}")
        out[engine] = json.loads(proc.stdout)
    ox_q, rdf_q = out["pyoxigraph"]["queries"], out["rdflib"]["queries"]
    rows = {}
    for name in queries:
        a, b = ox_q[name], rdf_q[name]
        rows[name] = {
            "pyoxigraph_ms": a["ms"],
            "rdflib_ms": b["ms"],
            "speedup": round(b["ms"] / a["ms"], 1),
            "rows": a["rows"],
            "same_rows": a["digest"] == b["digest"],
        }
    return {
        "load_s": {k: v["load_s"] for k, v in out.items()},
        "queries": rows,
    }


# -- main --------------------------------------------------------------------------------


def versions() -> dict:
    import importlib.metadata as md

    v = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    for pkg in ("pyoxigraph", "rdflib", "uvicorn", "fastapi", "uvloop", "httptools"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = None  # uvicorn falls back to asyncio + h11 without uvloop/httptools
    v["oxigraph"] = subprocess.run(
        [oxigraph_command(), "--version"], capture_output=True, text=True
    ).stdout.strip()
    v["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(
        "\n"
    )[0]
    return v


# Where the front process's time goes, by py-spy samples: each sample is charged to the
# first of these that its stack shows (jiceng code first, then the innermost library).
def _category(frames: list[str]) -> str:
    stack = ";".join(frames)
    if "_Worker.call" in stack or "Pool.run" in stack:
        return "jiceng: worker round trip (workers.Pool.run: wait_for, pickle, socketpair)"
    if "forbidden_keyword" in stack:
        return "jiceng: SERVICE check (sparqltext.forbidden_keyword)"
    if "_read_params" in stack:
        return "jiceng: sparql._read_params (request body)"
    for f in reversed(frames):
        if any(k in f for k in ("RequestResponseCycle.send", "h11/", "Protocol.")):
            return "uvicorn: HTTP parsing and response writing"
        if "server/" in f and "server/run.py" not in f:
            return "jiceng: other endpoint code"
        if "starlette/" in f or "fastapi/" in f:
            return "Starlette/FastAPI: routing, middleware, dependency solving"
    return "asyncio: event loop, selector, transports"


def profile(py_spy: str, pid: int, wrk: Wrk, url: str, **kw) -> dict:
    """py-spy on the front process while wrk runs: share of samples per code path."""
    out = wrk.work / f"profile-{wrk.n}.raw"
    load = threading.Thread(target=lambda: wrk.run(url, **kw))
    load.start()
    time.sleep(0.5)  # let wrk connect first
    seconds = max(int(wrk.duration) - 1, 1)
    cmd = [py_spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw"]
    subprocess.run([*cmd, "-o", str(out)], capture_output=True, check=True)
    load.join()
    shares: dict[str, int] = {}
    for line in out.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        cat = _category(stack.split(";")[1:])
        shares[cat] = shares.get(cat, 0) + int(n)
    total = sum(shares.values()) or 1
    return {k: round(100 * v / total, 1) for k, v in sorted(shares.items(), key=lambda x: -x[1])}


# The HTTP stack alone: a FastAPI app with jiceng's CORS middleware, run by the same
# ``uvicorn.run`` call as ``jiceng serve``, answering the lookup's bytes from memory.
# Its req/s is a ceiling for any endpoint of the real server on this machine.
FLOOR = """
import sys, uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
body = open(sys.argv[2], "rb").read()
app = FastAPI()
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                   allow_headers=["*"], expose_headers=["ETag"])
@app.post("/sparql")
async def sparql(request: Request) -> Response:
    await request.body()
    return Response(body, media_type="application/sparql-results+json; charset=utf-8")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


@contextlib.contextmanager
def floor_server(body: bytes, work: Path):
    (work / "floor.body").write_bytes(body)
    port = free_port()
    args = [sys.executable, "-c", FLOOR, str(port), str(work / "floor.body")]
    proc = spawn(args, work / "floor.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/docs", proc, 60)
        yield base, proc
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "kg.ttl")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--queries", default="", help="comma-separated canned queries (default: all)")
    ap.add_argument("--no-engines", action="store_true", help="skip rdflib vs pyoxigraph")
    ap.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default: {OUT.name})")
    ap.add_argument(
        "--py-spy",
        metavar="EXE",
        help="py-spy command: also profile the server's front process (lookup, one URL)",
    )
    args = ap.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file (jiceng build seeds -o build/kg.ttl)")
    result: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "dump": str(args.data),
        "wrk": {"duration_s": args.duration, "threads": args.threads, "conns": args.connections},
        "versions": versions(),
    }
    picked = pick(args.data)
    post = {"Content-Type": "application/sparql-query", "Accept": RESULTS_JSON}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        wrk = Wrk(work, args.duration, args.threads, args.connections)
        with (
            oxigraph_server(args.data, work) as (ox_base, ox_proc, ox_load),
            jiceng_server(args.data, work) as (jc_base, jc_proc, jc_ready),
            jiceng_server(args.data, work, store=work / "store") as (jd_base, jd_proc, jd_ready),
        ):
            result["start"] = {
                "oxigraph_load_s": round(ox_load, 2),
                "jiceng_ready_s": round(jc_ready, 2),
                "jiceng_store_ready_s": round(jd_ready, 2),
            }
            ox_cpu = {"server": [ox_proc.pid]}
            jc_cpu = {"front": [jc_proc.pid], "workers": children(jc_proc.pid)}
            jd_cpu = {"front": [jd_proc.pid], "workers": children(jd_proc.pid)}
            cases = canned_cases(jc_base, picked["entities"])
            if args.queries:
                keep = set(args.queries.split(","))
                cases = [c for c in cases if c["name"] in keep]

            lookup: dict = {"sparql": picked["lookup"]}
            q = picked["lookup"]
            lookup["jiceng"] = wrk.run(jc_base + "/sparql", "POST", q, post, jc_cpu)
            lookup["jiceng_store"] = wrk.run(jd_base + "/sparql", "POST", q, post, jd_cpu)
            lookup["oxigraph"] = wrk.run(ox_base + "/query", "POST", q, post, ox_cpu)
            # The same lookup, every request a new text: what a client asking always
            # something new (a crawler walking entities) gets, on both servers.
            jc_url, ox_url = jc_base + "/sparql", ox_base + "/query"
            lookup["jiceng_uncached"] = wrk.run(jc_url, "POST", q, post, jc_cpu, unique=True)
            lookup["oxigraph_uncached"] = wrk.run(ox_url, "POST", q, post, ox_cpu, unique=True)
            body = httpx.post(jc_base + "/sparql", content=q.encode(), headers=post).content
            with floor_server(body, work) as (fl_base, fl_proc):
                cpu = {"front": [fl_proc.pid]}
                lookup["http_floor"] = wrk.run(fl_base + "/sparql", "POST", q, post, cpu)
            result["lookup"] = lookup
            if args.py_spy:
                result["profile"] = {
                    "lookup /sparql": profile(
                        args.py_spy,
                        jc_proc.pid,
                        wrk,
                        jc_base + "/sparql",
                        method="POST",
                        body=q,
                        headers=post,
                    ),
                }
                if cases:
                    path = cases[0]["path"]
                    result["profile"][f"GET {path} (cached)"] = profile(
                        args.py_spy, jc_proc.pid, wrk, jc_base + path
                    )

            result["canned"] = []
            for case in cases:
                info = {**case, **check_same(case, jc_base, ox_base)}
                print(f"  {case['name']}: {info['rows']} rows", file=sys.stderr)
                with httpx.Client() as c:
                    etag = c.get(jc_base + case["path"]).headers["etag"]
                url, text = jc_base + case["path"], case["sparql"]
                info["url"] = wrk.run(url, cpu=jc_cpu)
                info["url_304"] = wrk.run(url, headers={"If-None-Match": etag}, cpu=jc_cpu)
                info["jiceng_sparql"] = wrk.run(jc_base + "/sparql", "POST", text, post, jc_cpu)
                info["jiceng_store_sparql"] = wrk.run(
                    jd_base + "/sparql", "POST", text, post, jd_cpu
                )
                info["oxigraph_sparql"] = wrk.run(ox_base + "/query", "POST", text, post, ox_cpu)
                result["canned"].append(info)
        if not args.no_engines:
            texts = {"lookup": picked["lookup"], **{c["name"]: c["sparql"] for c in cases}}
            result["engines"] = engines(args.data, texts, work)
    result["summary"] = summarise(result)
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten {args.out}")


KINDS = ("url", "url_304", "jiceng_sparql", "jiceng_store_sparql", "oxigraph_sparql")


def _ratio(a: dict, b: dict) -> float:
    return round(a["req_per_s"] / b["req_per_s"], 2)


def summarise(r: dict) -> dict:
    lk = r["lookup"]
    s: dict = {
        "lookup_ratio": _ratio(lk["jiceng"], lk["oxigraph"]),
        "lookup_store_ratio": _ratio(lk["jiceng_store"], lk["oxigraph"]),
        "http_floor_ratio": _ratio(lk["http_floor"], lk["oxigraph"]),
        "lookup_uncached_ratio": _ratio(lk["jiceng_uncached"], lk["oxigraph_uncached"]),
    }
    for kind in KINDS[:-1]:
        ratios = [_ratio(c[kind], c["oxigraph_sparql"]) for c in r["canned"]]
        s[f"{kind}_ratio_min"] = min(ratios, default=None)
        s[f"{kind}_ratio_geomean"] = round(statistics.geometric_mean(ratios), 2) if ratios else None
    if "engines" in r:
        ups = [q["speedup"] for k, q in r["engines"]["queries"].items() if k != "lookup"]
        s["engine_speedup_min"] = min(ups)
        s["engine_speedup_geomean"] = round(statistics.geometric_mean(ups), 1)
        s["engine_same_rows"] = all(q["same_rows"] for q in r["engines"]["queries"].values())
    measured = list(lk.values())[1:] + [c[k] for c in r["canned"] for k in KINDS]
    s["errors"] = sum(m["errors"] for m in measured)
    return s


def _cpu(m: dict) -> str:
    return "+".join(str(v) for v in m["cpu_us_per_req"].values())


def report(r: dict) -> None:
    w = r["wrk"]
    print(
        f"\nwrk -t{w['threads']} -c{w['conns']} -d{w['duration_s']:g}s on loopback; ratio = "
        "req/s / Oxigraph server req/s on the same SPARQL; CPU = server CPU microseconds "
        "per request (jiceng: front process + query workers)\n"
    )
    print(
        f"{'measure':42}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'CPU us':>12}"
        f"{'| oxigraph':>11}{'p50 ms':>8}{'p99 ms':>8}{'CPU us':>8}"
        f"{'ratio':>7}{'target':>8}  met"
    )

    def row(name: str, mine: dict, theirs: dict, target: float | None) -> None:
        ratio = _ratio(mine, theirs)
        met = "" if target is None else ("yes" if ratio >= target else "NO")
        print(
            f"{name:42}{mine['req_per_s']:>8.0f}{mine['p50_ms']:>8}{mine['p99_ms']:>8}"
            f"{_cpu(mine):>12}{theirs['req_per_s']:>11.0f}{theirs['p50_ms']:>8}"
            f"{theirs['p99_ms']:>8}{_cpu(theirs):>8}"
            f"{ratio:>7}{'' if target is None else f'>= {target:g}':>8}  {met}"
        )

    lk = r["lookup"]
    print("one-triple lookup via /sparql")
    row("  jiceng serve (in-memory store)", lk["jiceng"], lk["oxigraph"], TARGETS["lookup"])
    row("  jiceng serve --store (RocksDB)", lk["jiceng_store"], lk["oxigraph"], None)
    row("  HTTP floor: FastAPI+CORS, constant body", lk["http_floor"], lk["oxigraph"], None)
    uncached, ox_uncached = lk["jiceng_uncached"], lk["oxigraph_uncached"]
    row("  every request a new text (no cache hit)", uncached, ox_uncached, None)
    for c in r["canned"]:
        params = " ".join(f"{k}={v}" for k, v in c["params"].items())
        print(f"{c['name']} {params} ({c['rows']} rows, {c['bytes'] // 1024} KB)")
        row("  URL, GET (cached)", c["url"], c["oxigraph_sparql"], TARGETS["url"])
        row("  URL, If-None-Match -> 304", c["url_304"], c["oxigraph_sparql"], TARGETS["url"])
        row("  its SPARQL via /sparql", c["jiceng_sparql"], c["oxigraph_sparql"], None)
        ox_sparql = c["oxigraph_sparql"]
        row("  its SPARQL via /sparql, --store", c["jiceng_store_sparql"], ox_sparql, None)
    if "engines" in r:
        e = r["engines"]
        print(
            f"\nengine in-process (median per query; load: pyoxigraph "
            f"{e['load_s']['pyoxigraph']} s, rdflib {e['load_s']['rdflib']} s)"
        )
        print(f"{'query':28}{'rows':>6}{'pyoxigraph ms':>15}{'rdflib ms':>11}{'speed-up':>10}"
              f"{'target':>8}  same rows")  # fmt: skip
        for name, q in e["queries"].items():
            target = "" if name == "lookup" else f">= {TARGETS['engine']:g}"
            print(
                f"{name:28}{q['rows']:>6}{q['pyoxigraph_ms']:>15}{q['rdflib_ms']:>11}"
                f"{q['speedup']:>10}{target:>8}  {q['same_rows']}"
            )
    for what, shares in r.get("profile", {}).items():
        print(f"\nprofile of the jiceng front process, {what} (% of py-spy samples)")
        for k, v in shares.items():
            print(f"  {v:5.1f}%  {k}")
    s = r["summary"]
    print(f"\nsummary: {json.dumps(s)}")
    if s["errors"]:
        print(f"WARNING: {s['errors']} failed requests (see the JSON)")


if __name__ == "__main__":
    main()
