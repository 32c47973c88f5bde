"""The ``jiceng`` command end to end: build, formats, bad input, atomic output, query, stats."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph

from kg.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


def jiceng(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real command in a child process (to see exit codes and stderr as a user does)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "kg.cli", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jiceng: error:")
    for fragment in fragments:
        assert fragment in lines[0]


# --------------------------------------------------------------------------- build


def test_build_is_deterministic(seed_dump: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.ttl"
    assert main(["build", str(SEEDS), "-o", str(again), "--quiet"]) == 0
    assert again.read_bytes() == seed_dump.read_bytes()


def test_dump_parses_with_rdflib_and_loads_into_pyoxigraph(seed_dump: Path) -> None:
    g = Graph().parse(seed_dump, format="turtle")
    assert len(g) > 5000
    store = ox.Store()
    store.bulk_load(path=str(seed_dump), format=ox.RdfFormat.TURTLE)
    assert len(store) == len(g)


def test_summary_reports_counts(tmp_path: Path) -> None:
    result = jiceng("build", str(SEEDS / "003_5ab60398d2227b0f.txt"), "-o", str(tmp_path / "a.ttl"))
    assert result.returncode == 0, result.stderr
    assert "documents 1" in result.stderr
    assert "secretaryOf 10" in result.stderr
    assert "entities:" in result.stderr and "seconds" not in result.stdout


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("kg.nt", "nt"), ("kg.jsonld", "json-ld"), ("kg.trig", "trig"), ("kg.rdf", "xml")],
)
def test_output_format_follows_extension(tmp_path: Path, name: str, fmt: str) -> None:
    out = tmp_path / name
    doc = SEEDS / "004_1543e681b62a70bd.txt"
    assert main(["build", str(doc), "-o", str(out), "--quiet"]) == 0
    g = Graph()
    if fmt == "trig":
        from rdflib import Dataset

        g = Dataset()
    g.parse(out, format=fmt)
    assert len(g) > 500


def test_inputs_as_glob_and_file_list(tmp_path: Path) -> None:
    out1, out2 = tmp_path / "glob.nt", tmp_path / "files.nt"
    assert main(["build", str(SEEDS / "00[34]_*.txt"), "-o", str(out1), "--quiet"]) == 0
    files = [str(SEEDS / "003_5ab60398d2227b0f.txt"), str(SEEDS / "004_1543e681b62a70bd.txt")]
    assert main(["build", *files, "-o", str(out2), "--quiet"]) == 0
    assert out1.read_bytes() == out2.read_bytes()


def test_file_names_that_are_not_iri_safe(tmp_path: Path) -> None:
    """A file name with spaces or IRI delimiters still builds: it is percent-encoded in
    the document IRI (Chinese characters are kept as they are)."""
    src = (SEEDS / "004_1543e681b62a70bd.txt").read_bytes()
    for name in ("my article 1.txt", "a<b>{c}%.txt", "社区 报道.txt"):
        (tmp_path / name).write_bytes(src)
    out = tmp_path / "kg.nt"
    assert main(["build", str(tmp_path), "-o", str(out), "--quiet"]) == 0
    store = ox.Store()
    store.bulk_load(path=str(out), format=ox.RdfFormat.N_TRIPLES)
    docs = sorted(r[0].value.rsplit("/", 1)[1] for r in store.query(
        "SELECT ?d WHERE { ?d a <https://w3id.org/jiceng/ontology#Document> }"))  # fmt: skip
    assert docs == ["a%3Cb%3E%7Bc%7D%25", "my%20article%201", "社区%20报道"]


# --------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path: Path) -> None:
    r = jiceng("build", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o.ttl"))
    assert_clean_error(r, "nope.txt", "no such file")


def test_directory_without_txt(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("x", encoding="utf-8")
    r = jiceng("build", str(tmp_path), "-o", str(tmp_path / "o.ttl"))
    assert_clean_error(r, str(tmp_path), "no .txt")


def test_not_utf8_names_file_and_byte_offset(tmp_path: Path) -> None:
    bad = tmp_path / "gbk.txt"
    bad.write_bytes("郑州市委书记".encode("gbk"))
    with pytest.raises(UnicodeDecodeError) as err:
        bad.read_bytes().decode("utf-8")
    r = jiceng("build", str(bad), "-o", str(tmp_path / "o.ttl"))
    assert_clean_error(r, "gbk.txt", "not UTF-8", f"byte offset {err.value.start}")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty file"), (b"  \n\t\n", "empty"), (b"\x00\x01\x02PK\x03\x04" * 50, "binary")],
)
def test_empty_whitespace_and_binary_files(tmp_path: Path, content: bytes, problem: str) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    r = jiceng("build", str(bad), "-o", str(tmp_path / "o.ttl"))
    assert_clean_error(r, "bad.txt", problem)


def test_one_bad_file_among_many_is_a_warning_unless_strict(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SEEDS / "003_5ab60398d2227b0f.txt", src)
    (src / "broken.txt").write_bytes(b"\xff\xfe\x00bad")
    out = tmp_path / "o.ttl"
    r = jiceng("build", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "warning: skipped" in r.stderr and "broken.txt" in r.stderr
    assert "files skipped 1" in r.stderr
    strict = jiceng("build", str(src), "-o", str(tmp_path / "s.ttl"), "--strict")
    assert_clean_error(strict, "broken.txt")
    assert not (tmp_path / "s.ttl").exists()


def test_unknown_output_extension_is_a_usage_error(tmp_path: Path) -> None:
    r = jiceng("build", str(SEEDS), "-o", str(tmp_path / "kg.foo"))
    assert_clean_error(r, "kg.foo", "--format")


def test_failed_build_keeps_the_previous_dump(tmp_path: Path) -> None:
    out = tmp_path / "kg.ttl"
    out.write_text("# a good dump from yesterday\n", encoding="utf-8")
    before = out.read_bytes()
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    r = jiceng("build", str(bad), "-o", str(out))
    assert r.returncode != 0
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --------------------------------------------------------------------------- query, stats


def test_query_formats(seed_dump: Path, capsys) -> None:
    q = (
        "PREFIX jc: <https://w3id.org/jiceng/ontology#> "
        "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE { ?p jc:secretaryOf ?u }"
    )
    assert main(["query", "--data", str(seed_dump), "--query", q, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "21"]
    assert main(["query", "--data", str(seed_dump), "--query", q, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"]["bindings"][0]["n"]["value"] == "21"
    assert main(["query", "--data", str(seed_dump), "--query", q, "--format", "tsv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "21"


def test_query_file_and_malformed_query(seed_dump: Path, tmp_path: Path) -> None:
    f = tmp_path / "q.rq"
    f.write_text("SELECT * WHERE { ?s ?p ?o } LIMIT 2", encoding="utf-8")
    ok = jiceng("query", "--data", str(seed_dump), "--query-file", str(f), "--format", "csv")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 3
    bad = jiceng("query", "--data", str(seed_dump), "--query", "SELEC nothing")
    assert_clean_error(bad, "malformed SPARQL")


def test_query_on_a_corrupt_dump(tmp_path: Path) -> None:
    dump = tmp_path / "bad.ttl"
    dump.write_text("<a> <b> ", encoding="utf-8")
    r = jiceng("query", "--data", str(dump), "--query", "ASK {}")
    assert_clean_error(r, "bad.ttl", "cannot parse")


def test_stats_counts_classes_and_properties(seed_dump: Path, capsys) -> None:
    assert main(["stats", "--data", str(seed_dump), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "https://w3id.org/jiceng/ontology#Person," in out
    assert "https://w3id.org/jiceng/ontology#secretaryOf,21" in out


def test_validate_seed_graph_conforms(seed_dump: Path, capsys) -> None:
    assert main(["validate", "--data", str(seed_dump)]) == 0
    assert "Conforms: True" in capsys.readouterr().out
