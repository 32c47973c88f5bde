"""A build spread over processes writes the very bytes of a build in one process.

``--jobs N`` reads, extracts and writes each document in a worker and puts the blocks of
the output together (kg/pipeline.py, kg/workers.py, kg/formats.py): every format must come
out byte for byte as ``serialise`` writes the whole graph, bad inputs must be reported as
they are with one process, and the worker pool must keep each document where it was read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kg import formats
from kg.cli import main
from kg.ingest import IngestError
from kg.pipeline import Extractor, build_dump, build_graph
from kg.rdf import DumpGraph, serialise
from kg.workers import Forked, Inline, WorkerDied
from tests.conftest import FIXTURES, ROOT

SEEDS = ROOT / "seeds"
FORMATS = ("turtle", "nt", "json-ld", "xml", "trig", "nquads")
BASE = "https://example.org/kg/"


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """The seeds twice (under other ids: entities shared between documents) and two articles
    from elsewhere: 12 documents."""
    root = tmp_path_factory.mktemp("corpus")
    for p in [*SEEDS.glob("*.txt"), *(FIXTURES / "unseen").glob("*.txt")]:
        shutil.copy(p, root / p.name)
    for p in SEEDS.glob("*.txt"):
        shutil.copy(p, root / f"copy-{p.name}")
    return sorted(root.glob("*.txt"))


@pytest.fixture(scope="module")
def whole(corpus: list[Path]) -> DumpGraph:
    """The graph made in one process (no worker, no blocks put together)."""
    graph, _, report = build_graph(corpus, base=BASE)
    assert report.documents == 12 and len(graph) == report.triples
    return graph


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_workers_write_what_one_process_writes(corpus, whole, extractor, fmt: str) -> None:
    data, _, report = build_dump(corpus, fmt, base=BASE, jobs=2, extractor=extractor)
    assert data == serialise(whole, fmt)
    assert report.triples == len(whole) and report.documents == 12


def test_one_process_and_three_workers_agree(corpus, whole, extractor) -> None:
    one, _, _ = build_dump(corpus, "turtle", base=BASE, jobs=1, extractor=extractor)
    three, _, _ = build_dump(corpus, "turtle", base=BASE, jobs=3, extractor=extractor)
    assert one == three == serialise(whole, "turtle")


def test_the_graph_itself_does_not_depend_on_jobs(corpus, whole) -> None:
    graph, kg, _ = build_graph(corpus, base=BASE, jobs=2)
    assert graph.triples == whole.triples
    assert {g: ts for g, ts in graph.named.items() if ts} == {
        g: ts for g, ts in whole.named.items() if ts
    }
    assert len(kg.entities) > 100


def test_cli_jobs_writes_the_seed_dump(seed_dump: Path, tmp_path: Path) -> None:
    out = tmp_path / "kg.ttl"
    assert main(["build", str(SEEDS), "-o", str(out), "--jobs", "2", "--quiet"]) == 0
    assert out.read_bytes() == seed_dump.read_bytes()


def test_more_jobs_than_files(tmp_path: Path, extractor) -> None:
    doc = SEEDS / "004_1543e681b62a70bd.txt"
    one, _, _ = build_dump([doc], "nt", jobs=1, extractor=extractor)
    many, _, _ = build_dump([doc], "nt", jobs=4, extractor=extractor)
    assert one == many


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture
def messy(tmp_path: Path) -> list[Path]:
    """Good articles with an empty file and a binary one between them."""
    seeds = sorted(SEEDS.glob("*.txt"))
    shutil.copy(seeds[4], tmp_path / "a.txt")
    (tmp_path / "b-empty.txt").write_bytes(b"")
    shutil.copy(seeds[0], tmp_path / "c.txt")
    (tmp_path / "d-binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    shutil.copy(seeds[3], tmp_path / "e.txt")
    return sorted(tmp_path.glob("*.txt"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_files_are_skipped_in_input_order(messy, extractor, jobs: int) -> None:
    _, _, report = build_dump(messy, "turtle", jobs=jobs, extractor=extractor)
    assert report.documents == 3
    assert [line.split(":")[0] for line in report.skipped] == [str(messy[1]), str(messy[3])]


@pytest.mark.parametrize("jobs", [1, 2])
def test_strict_stops_at_the_first_bad_file(messy, extractor, jobs: int) -> None:
    with pytest.raises(IngestError) as err:
        build_dump(messy, "turtle", strict=True, jobs=jobs, extractor=extractor)
    assert err.value.path == str(messy[1])


@pytest.mark.parametrize("jobs", [1, 2])
def test_two_files_with_one_id(tmp_path: Path, extractor, jobs: int) -> None:
    doc = SEEDS / "004_1543e681b62a70bd.txt"
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        shutil.copy(doc, tmp_path / sub / doc.name)
    paths = [tmp_path / "x" / doc.name, tmp_path / "y" / doc.name]
    with pytest.raises(IngestError, match="share the document id") as err:
        build_dump(paths, "turtle", jobs=jobs, extractor=extractor)
    assert err.value.path == str(paths[1])


# --------------------------------------------------------------------------- blocks


def test_blocks_made_apart_assemble_into_the_whole(whole: DumpGraph) -> None:
    """Subjects split between two block makers (as between workers) give the same bytes."""
    triples = sorted(whole.triples)
    subjects = sorted({t[0] for t in triples})
    mine = set(subjects[::2])
    for make in (lambda: formats.Turtle({"jc": "https://w3id.org/jiceng/ontology#"}),
                 formats.NTriples):  # fmt: skip
        layout = make()
        parts = formats.blocks(layout, [t for t in triples if t[0] in mine])
        other = make()
        parts += formats.blocks(other, [t for t in triples if t[0] not in mine])
        layout.used |= other.used
        assert formats.assemble(layout, parts) == formats.write(make(), triples)


def test_a_subject_split_between_blocks_is_refused() -> None:
    s = "<https://example.org/a>"
    layout = formats.NTriples()
    parts = formats.blocks(layout, [(s, "<https://example.org/p>", '"1"')])
    parts += formats.blocks(layout, [(s, "<https://example.org/q>", '"2"')])
    with pytest.raises(ValueError, match="two blocks for one subject"):
        formats.assemble(layout, parts)


# --------------------------------------------------------------------------- workers


class _Context:
    def __init__(self) -> None:
        self.held: dict[int, str] = {}


def _keep(context: _Context, item: tuple[int, str]) -> int:
    context.held[item[0]] = item[1]
    return os.getpid()


def _give_back(context: _Context, i: int) -> tuple[str, int]:
    return context.held.pop(i), os.getpid()


def _fail(context: _Context, i: int) -> None:
    raise ValueError(f"bad item {i}")


def _die(context: _Context, i: int) -> None:
    os._exit(3)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_each_item_goes_back_to_the_worker_that_holds_it(size: int) -> None:
    with Forked(_Context(), size) if size > 1 else Inline(_Context()) as pool:
        items = [(i, f"doc{i}") for i in range(20)]
        owner, pid = {}, {}
        for k, w, p in pool.run(_keep, items):
            owner[k], pid[k] = w, p
        assert len(set(owner.values())) == size
        got, owners = {}, [owner[i] for i in range(20)]
        for k, w, (value, p) in pool.run(_give_back, list(range(20)), owners):
            assert w == owner[k] and p == pid[k]
            got[k] = value
    assert got == {i: f"doc{i}" for i in range(20)}


def test_an_error_in_a_worker_is_raised_here() -> None:
    with pytest.raises(ValueError, match="bad item") as err:
        with Forked(_Context(), 2) as pool:
            list(pool.run(_fail, [1, 2, 3]))
    assert any("raised in a build worker" in note for note in err.value.__notes__)


def test_a_dead_worker_is_reported() -> None:
    with pytest.raises(WorkerDied, match="exit code 3"):
        with Forked(_Context(), 2) as pool:
            list(pool.run(_die, [1]))
