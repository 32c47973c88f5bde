"""Hostile input for the builder: arbitrary text never crashes it, offsets stay valid,
and a build killed midway never touches the previous dump."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.ingest import char_matches, parse_document
from kg.pipeline import Extractor
from kg.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]

# Text that looks like the seeds: CJK, full-width punctuation, digits, Latin, layout noise,
# plus anything Unicode can produce (control characters, surrogates excluded by st.text).
SEED_CHARS = "郑州市中原区建设路街道党工委书记临时党支部社区村“”、，。；：（）()#\n \t0123456789"
texts = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.sampled_from(SEED_CHARS), max_size=400),
    st.lists(
        st.sampled_from(["\n", "\n\n", "# ", "“", "”", "书记 ", "王", "社区", "。", "\x00"]),
        max_size=80,
    ).map("".join),  # fmt: skip
)


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor()


def check_offsets(raw: str, doc) -> None:
    for s in doc.sentences:
        assert 0 <= s.start <= s.end <= len(raw)
        assert len(s.offsets) == len(s.text)
        for i, ch in enumerate(s.text):
            assert s.start <= s.offsets[i] < s.end
            assert char_matches(raw[s.offsets[i]], ch)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_arbitrary_text_extracts_without_crash_and_with_valid_offsets(extractor, raw) -> None:
    doc = parse_document(raw, "fuzz")
    check_offsets(raw, doc)
    extraction = extractor.extract(doc)
    for m in extraction.mentions:
        sentence = doc.sentences[m.sentence]
        assert sentence.text[m.start : m.end] == m.text
        start, end = sentence.raw_span(m.start, m.end)
        assert 0 <= start <= end <= len(raw)
    resolve([extraction])


def test_a_one_megabyte_line(extractor) -> None:
    raw = ("郑州市建设路街道党工委书记 张三。" * 4000 + "没有句号的一长行" * 40000)[: 1 << 20]
    doc = parse_document(raw, "long")
    check_offsets(raw, doc)
    started = time.perf_counter()
    extractor.extract(doc)
    assert time.perf_counter() - started < 120


def test_killed_build_leaves_the_previous_dump_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "kg.ttl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "kg.cli", "build", str(ROOT / "seeds"), "-o", str(out), "-q"]
    subprocess.run(cmd, env=env, check=True, timeout=300)
    good = out.read_bytes()
    # A bigger corpus, so the kill lands while the build is working.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(6):
        for p in (ROOT / "seeds").glob("*.txt"):
            (corpus / f"{p.stem}-{k}.txt").write_bytes(p.read_bytes())
    for delay in (0.5, 2.0, 4.0):
        proc = subprocess.Popen([*cmd[:4], str(corpus), *cmd[5:]], env=env)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.returncode == 0:
            good = out.read_bytes()  # it finished first: that is the new good dump
        assert out.read_bytes() == good
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".kg.ttl.")]
    # A SIGKILLed build cannot clean up its temp file, but the dump itself is never touched.
    assert all(name.endswith(".tmp") for name in leftovers)
