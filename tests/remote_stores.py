"""Helpers for the tests against stores no one here wrote: an Oxigraph server, Virtuoso,
``jiceng serve --backend sparql`` in front of them, and a fake SPARQL endpoint.

Everything listens on 127.0.0.1 and is stopped by its process id.  When a store's
program is missing the tests skip, except under CI (``CI`` set), where they fail:
``make test`` installs both (``make store-deps``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import ROOT, free_port

VIRTUOSO_INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")
XSD = "http://www.w3.org/2001/XMLSchema#"
NUMERIC = {XSD + t for t in ("integer", "decimal", "double", "float", "int", "long", "short")}


def need(program: str) -> str:
    """Path of ``program`` (also looked up beside this Python), or skip (fail under CI)."""
    found = shutil.which(program) or shutil.which(program, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{program} not installed (make store-deps)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Proc:
    proc: subprocess.Popen
    url: str
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def fail(self, what: str) -> None:
        self.stop()
        tail = self.log.read_text("utf-8", "replace")[-2000:] if self.log.exists() else ""
        raise RuntimeError(f"{what}\n{tail}")


def _spawn(cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> Any:
    out = log.open("wb")
    try:
        return subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    finally:
        out.close()


def wait_http(p: Proc, probe: str, deadline_s: float = 60.0, **params: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            p.fail(f"{p.proc.args[0]} exited with {p.proc.returncode}")
        try:
            if httpx.get(probe, params=params, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    p.fail(f"{probe} did not answer within {deadline_s:g} s")


# -- Oxigraph server --------------------------------------------------------------------


def start_oxigraph(workdir: Path, dump: Path | None = None) -> Proc:
    """``oxigraph load`` the dump into a fresh directory and ``serve-read-only`` it; without
    a dump, an in-memory read-write ``serve`` (for the Graph Store Protocol tests)."""
    exe = need("oxigraph")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "oxigraph.log"
    if dump is not None:
        db = workdir / "db"
        subprocess.run(
            [exe, "load", "--location", str(db), "--file", str(dump)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cmd = [exe, "serve-read-only", "--location", str(db), "--bind", f"127.0.0.1:{port}"]
    else:
        cmd = [exe, "serve", "--bind", f"127.0.0.1:{port}"]
    p = Proc(_spawn(cmd, log, workdir), f"http://127.0.0.1:{port}", log)
    return p


def oxigraph_ready(p: Proc) -> Proc:
    wait_http(p, p.url + "/query", query="ASK {}")
    return p


# -- Virtuoso -------------------------------------------------------------------------------


def virtuoso_ini(template: str, workdir: Path, sql_port: int, http_port: int) -> str:
    """Debian's virtuoso.ini with files, DirsAllowed and both ports moved to ``workdir`` and
    127.0.0.1, and the SPARQL row cap raised (it cuts results silently)."""
    d = str(workdir)
    overrides = {
        ("Database", "DatabaseFile"): f"{d}/virtuoso.db",
        ("Database", "ErrorLogFile"): f"{d}/virtuoso.log",
        ("Database", "LockFile"): f"{d}/virtuoso.lck",
        ("Database", "TransactionFile"): f"{d}/virtuoso.trx",
        ("Database", "xa_persistent_file"): f"{d}/virtuoso.pxa",
        ("TempDatabase", "DatabaseFile"): f"{d}/virtuoso-temp.db",
        ("TempDatabase", "TransactionFile"): f"{d}/virtuoso-temp.trx",
        ("Parameters", "ServerPort"): f"127.0.0.1:{sql_port}",
        ("Parameters", "DirsAllowed"): f"., {d}, /usr/share/virtuoso-opensource-7/vad",
        ("HTTPServer", "ServerPort"): f"127.0.0.1:{http_port}",
        ("SPARQL", "ResultSetMaxRows"): "1000000",
    }
    section, out = None, []
    for line in template.splitlines():
        m = re.match(r"\s*\[(.+?)\]", line)
        if m:
            section = m.group(1)
        else:
            m = re.match(r"\s*([A-Za-z0-9_]+)\s*=", line)
            if m and (section, m.group(1)) in overrides:
                line = f"{m.group(1)} = {overrides[(section, m.group(1))]}"
        out.append(line)
    return "\n".join(out) + "\n"


def start_virtuoso(workdir: Path) -> Proc:
    exe = need("virtuoso-t")
    need("isql-vt")
    if not VIRTUOSO_INI.is_file():
        need("virtuoso.ini")  # skip/fail the same way
    workdir.mkdir(parents=True, exist_ok=True)
    sql_port, http_port = free_port(), free_port()
    ini = workdir / "virtuoso.ini"
    ini.write_text(virtuoso_ini(VIRTUOSO_INI.read_text(), workdir, sql_port, http_port))
    cmd = [exe, "+configfile", str(ini), "+foreground"]
    log = workdir / "stdout.log"
    p = Proc(_spawn(cmd, log, workdir), f"http://127.0.0.1:{http_port}", log)
    p.extra["isql"] = f"127.0.0.1:{sql_port}"
    return p


def isql(p: Proc, sql: str, timeout: float = 60) -> str:
    r = subprocess.run(
        [need("isql-vt"), p.extra["isql"], "dba", "dba", f"exec={sql}"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"isql failed: {r.stdout[-500:]} {r.stderr[-500:]}")
    return r.stdout


def virtuoso_load(p: Proc, dump: Path, graph: str, deadline_s: float = 60.0) -> Proc:
    """Wait for the SQL port, bulk-load ``dump`` into ``graph``, wait for /sparql."""
    deadline = time.monotonic() + deadline_s
    while True:
        if p.proc.poll() is not None:
            p.fail(f"virtuoso-t exited with {p.proc.returncode}")
        try:
            isql(p, "select 1;", timeout=5)
            break
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                p.fail(f"Virtuoso did not start within {deadline_s:g} s")
            time.sleep(0.3)
    workdir = Path(p.log).parent
    shutil.copy(dump, workdir / dump.name)
    out = isql(
        p,
        f"ld_dir('{workdir}', '{dump.name}', '{graph}'); rdf_loader_run(); checkpoint; "
        "select ll_state, ll_error from DB.DBA.load_list;",
    )
    if "NULL" not in out.split("ll_error")[-1]:
        raise RuntimeError(f"Virtuoso bulk load failed: {out[-800:]}")
    wait_http(p, p.url + "/sparql", query="ASK {}")
    p.extra["graph"] = graph
    return p


# -- jiceng serve ---------------------------------------------------------------------------


def start_jiceng(workdir: Path, *args: str, name: str = "jiceng") -> Proc:
    """``jiceng serve ARGS`` (through the CLI module) on a free port."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}-{port}.log"
    cmd = [sys.executable, "-m", "kg.cli", "serve", "--port", str(port), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return Proc(_spawn(cmd, log, ROOT, env), f"http://127.0.0.1:{port}", log)


def jiceng_ready(p: Proc, deadline_s: float = 90.0) -> Proc:
    wait_http(p, p.url + "/sparql", deadline_s, query="ASK {}")
    return p


# -- comparing answers ----------------------------------------------------------------------


def norm_term(term: dict[str, str] | None) -> tuple[str, ...] | None:
    """A SPARQL JSON term, with the differences engines may rightly have taken out:
    plain = xsd:string, language tags in lower case, numbers by value, blank node labels."""
    if term is None:
        return None
    kind, value = term["type"], term["value"]
    if kind == "uri":
        return ("uri", value)
    if kind == "bnode":
        return ("bnode",)
    lang = term.get("xml:lang")
    if lang:
        return ("lit", value, "@" + lang.lower())
    dt = term.get("datatype", XSD + "string")
    if dt in NUMERIC:
        try:
            return ("num", str(Decimal(value).normalize()))
        except InvalidOperation:
            pass
    return ("lit", value, "" if dt == XSD + "string" else dt)


def norm_rows(doc: dict[str, Any]) -> Counter:
    variables = doc["head"]["vars"]
    return Counter(
        tuple(norm_term(b.get(v)) for v in variables) for b in doc["results"]["bindings"]
    )


def canned(url: str, name: str, params: dict[str, str]) -> tuple[int, Any]:
    r = httpx.get(f"{url}/queries/{name}.json", params=params, timeout=60)
    return r.status_code, (r.json() if r.status_code in (200, 300) else r.text)


@cache
def _reference_store(dump: Path) -> Any:
    import pyoxigraph as ox

    from server import canned as canned_mod
    from server import jobs

    store = ox.Store()
    store.bulk_load(path=str(dump), format=ox.RdfFormat.TURTLE)
    reply = jobs.run_rows(store, {"query": canned_mod.INDEX_QUERY, "max_rows": 10**9})
    return store, canned_mod.NameIndex(reply["rows"]), canned_mod.load_all()


def reference(dump: Path, name: str, params: dict[str, str]) -> tuple[int, Any]:
    """The embedded store's answer, computed in-process with the server's own code."""
    from server import canned as canned_mod
    from server import jobs

    store, index, queries = _reference_store(dump)
    try:
        text = canned_mod.prepare(queries[name], params, index)
    except canned_mod.Ambiguous as exc:
        return 300, exc.as_json()
    except canned_mod.CannedError as exc:
        return exc.status, exc.message
    reply = jobs.run_query(store, {"query": text, "format": "json", "max_rows": 10000})
    return reply["status"], json.loads(reply["body"])


def canned_cases(ask: Any) -> list[tuple[str, dict[str, str]]]:
    """Every canned query with no parameters and with a parameter or two, the values
    taken from the answers themselves so that each parameterised case keeps some rows.

    ``ask(name, params) -> (status, doc)`` answers on the reference store.
    """

    def first(name: str, column: str, **params: str) -> str | None:
        status, doc = ask(name, params)
        if status != 200:
            return None
        for b in doc["results"]["bindings"]:
            if column in b and b[column]["type"] == "uri":
                return b[column]["value"]
        return None

    cases: list[tuple[str, dict[str, str]]] = []
    for name in sorted(p.stem for p in (ROOT / "queries").glob("*.rq")):
        cases.append((name, {}))
    district = first("temporary-party-branches", "district")
    place = first("places", "parent")
    adopter = first("programmes", "adopter")
    about = first("statistics", "subject")
    person = first("party-secretaries", "person")
    unit = first("party-secretaries", "unit")
    for case in [
        ("temporary-party-branches", {"district": district}),
        ("party-secretaries", {"district": district}),
        ("party-secretaries", {"district": district, "unitType": "Street"}),
        ("places", {"within": place}),
        ("programmes", {"adopter": adopter}),
        ("statistics", {"about": about}),
        ("entity", {"name": person}),
        ("entity", {"name": place}),
        ("evidence", {"name": person}),
        ("evidence", {"name": person, "other": unit}),
    ]:
        assert all(case[1].values()), f"no value for {case}"
        cases.append(case)  # type: ignore[arg-type]
    return cases


# -- a fake SPARQL endpoint (for limits and failure modes) ------------------------------------


class FakeEndpoint:
    """A scriptable SPARQL endpoint on 127.0.0.1, in a thread of the test process.

    It records every request.  Queries containing ``#slow`` sleep, ``#s1tat`` answer
    like Virtuoso cut by its own limit, ``#rows:N`` return N rows, ``#bnode`` a Virtuoso
    blank node, ``#fail`` a 500; anything else an empty result (ASK: true).
    """

    def __init__(self, server_header: str = "Virtuoso/07.20 (fake)") -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def version_string(self) -> str:
                return server_header

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                ctype = self.headers.get("content-type", "")
                params = parse_qs(urlsplit(self.path).query)
                if ctype.startswith("application/x-www-form-urlencoded"):
                    params.update(parse_qs(body.decode()))
                record = {"path": urlsplit(self.path).path, "params": params, "body": body}
                record["headers"] = dict(self.headers)
                fake.requests.append(record)
                if record["path"] == "/update":
                    self.send_response(204)
                    self.end_headers()
                    return
                fake.answer(self, (params.get("query") or [""])[0])

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, h: BaseHTTPRequestHandler, query: str) -> None:
        headers = {"Content-Type": "application/sparql-results+json"}
        status = 200
        if "#slow" in query:
            time.sleep(4)
        if "#fail" in query:
            status, headers["Content-Type"] = 500, "text/plain"
            body = b"Virtuoso 42000 Error: something broke\nmore detail"
        elif re.match(r"\s*ASK\b", query, re.I):
            body = b'{"head":{},"boolean":true}'
        else:
            n = int(m.group(1)) if (m := re.search(r"#rows:(\d+)", query)) else 0
            bindings = [{"x": {"type": "literal", "value": str(i)}} for i in range(n)]
            if "#bnode" in query:
                bindings = [{"x": {"type": "bnode", "value": "nodeID://b10006"}}]
            body = json.dumps({"head": {"vars": ["x"]}, "results": {"bindings": bindings}}).encode()
        if "#s1tat" in query:
            headers["X-SQL-State"] = "S1TAT"
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def queries(self) -> list[str]:
        return [(r["params"].get("query") or [""])[0] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
