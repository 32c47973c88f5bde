"""examples/quickstart.ipynb: committed without outputs, and runs top to bottom.

The notebook is executed with nbclient in a kernel on this very interpreter (a throw-away
kernelspec put first on ``JUPYTER_PATH``, so no ``ipykernel install`` step is needed and a
user-wide ``python3`` kernel cannot hijack the run), against a real server on 127.0.0.1
over the graph built from seeds/.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from tests.conftest import ROOT, RunningServer, start_server, stop_server

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
KERNEL = "jiceng-notebook-test"
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

# Appended to the in-memory copy only: reports the kernel's state as one JSON line.
CHECK = """
import json, sys
print("NOTEBOOK-CHECK " + json.dumps({
    "interpreter": sys.executable,
    "secretaries": len(secretaries),
    "secretary_columns": list(secretaries.columns),
    "persons": sorted(secretaries["person"].dropna().unique()),
    "branches": len(branches),
    "branch_places": sorted(branches["placeLabel"].dropna().unique()),
    "triples": len(g),
    "provenance": len(provenance),
    "tree_nodes": tree.number_of_nodes(),
    "label_lang": LABEL_LANG,
    "figure_labels": [t.get_text() for t in fig.axes[0].texts],
}, ensure_ascii=False))
"""


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def tagged(nb, tag: str):
    return next(c for c in code_cells(nb) if tag in c.metadata.get("tags", []))


def test_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [], f"outputs in committed cell {cell.get('id')}"
        assert cell.execution_count is None, f"execution count in cell {cell.get('id')}"
        assert "execution" not in cell.metadata, f"timing metadata in cell {cell.get('id')}"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_code_queries_instead_of_hard_coding() -> None:
    """Names and facts come from the graph: no Chinese text in code cells."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in code_cells(nb):
        assert not CJK.search(cell.source), f"Chinese text in code cell {cell.get('id')}"


@pytest.fixture(scope="module")
def notebook_server(seed_dump: Path) -> Iterator[RunningServer]:
    server = start_server(seed_dump, ready_timeout=180)
    yield server
    stop_server(server)


@pytest.fixture
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python (jiceng test)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def test_notebook_runs_against_server(
    notebook_server: RunningServer, venv_kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JICENG_ENDPOINT", notebook_server.url)
    monkeypatch.delenv("JICENG_DUMP", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook asks for inline figures

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(new_code_cell(CHECK))
    client = NotebookClient(
        nb,
        kernel_name=venv_kernel,
        timeout=60,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    started = time.monotonic()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"notebook took {elapsed:.1f} s"

    for cell in code_cells(nb):
        assert cell.execution_count is not None
        assert not [o for o in cell.outputs if o.output_type == "error"]

    # the DataFrames are displayed as tables, the tree as a PNG
    for tag in ("secretaries", "branches", "rdflib"):
        html = [o for o in tagged(nb, tag).outputs if "text/html" in o.get("data", {})]
        assert html and "<tbody>" in html[0]["data"]["text/html"], tag
    assert any("image/png" in o.get("data", {}) for o in tagged(nb, "tree").outputs)

    stream = "".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream")
    report = json.loads(stream.split("NOTEBOOK-CHECK ", 1)[1])
    assert report["interpreter"] == sys.executable
    assert report["secretaries"] > 0 and report["branches"] > 0 and report["provenance"] > 0
    assert {"name", "pinyin", "role", "unit", "district"} <= set(report["secretary_columns"])
    assert report["triples"] > 1000

    # the notebook's own SPARQL finds the same secretaries as the canned query
    canned = httpx.get(f"{notebook_server.url}/queries/party-secretaries.csv", timeout=30)
    assert canned.status_code == 200
    expected = {row["person"] for row in csv.DictReader(io.StringIO(canned.text))}
    assert set(report["persons"]) == expected

    # one label per tree node, Chinese with a CJK font, else pinyin (ASCII)
    labels = report["figure_labels"]
    assert len(labels) == report["tree_nodes"] > 0
    if report["label_lang"] == "zh":
        assert set(report["branch_places"]) <= set(labels)
    else:
        assert report["label_lang"] == "zh-Latn-pinyin"
        assert all(label.isascii() and label for label in labels)
