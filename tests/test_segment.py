"""kg.segment must reproduce pkuseg exactly, with offsets, through spaCy, from its own cache."""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

pkuseg = pytest.importorskip("pkuseg")
spacy = pytest.importorskip("spacy")

from kg import segment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED_FILES = sorted((ROOT / "seeds").glob("*.txt"))
SEED_LINES = [line for f in SEED_FILES for line in f.read_text(encoding="utf-8").splitlines()]

TRICKY = [
    "",
    "   ",
    "\n\t\u3000 \r\n",
    "2021年10月1日，GDP增长6.5%。",
    "１２３ＡＢＣｇｉ％・－／全角",
    "二〇二一年第十四个五年规划，几十万人，四千亿元",
    "iPhone 13 Pro Max售价5999元，e-mail: foo_bar@example.com",
    "1,234.56元/吨 | a*b:c 3.14",
    "👍👍郑州加油😀🐑在，👉这里",
    "（一）党建引领“网格化”治理——郑州经验……《人民日报》",
    "中文English混合123abc中文",
    "~!@#$%^&*()_+{}[]<>?",
    "a\u200bb\x1c c\x00d",
    "\ud800孤立的代理项",
    "。。。！！！？？？",
    "  前后有空格  ",
    "棉纺路街道党工委书记王军",
]


@pytest.fixture(scope="module")
def reference():
    """The real pkuseg (2-5 s, ~800 MB): loaded once."""
    return pkuseg.pkuseg()


@pytest.fixture(scope="module")
def seg():
    return segment.load_segmenter()


def test_model_found_from_installed_pkuseg():
    expected = Path(os.path.dirname(os.path.realpath(pkuseg.__file__))) / "models" / "default"
    assert segment.model_dir() == expected
    assert (segment.model_dir() / "features.pkl").is_file()


def test_seed_lines_identical(reference, seg):
    assert SEED_LINES
    for line in SEED_LINES:
        assert seg.cut(line) == reference.cut(line), line


def test_whole_documents_identical(reference, seg):
    for f in SEED_FILES:
        text = f.read_text(encoding="utf-8")
        assert seg.cut(text) == reference.cut(text), f.name


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_identical(reference, seg, text):
    assert seg.cut(text) == reference.cut(text)


def test_long_text_without_whitespace_identical(reference, seg):
    text = "".join("".join(f.read_text(encoding="utf-8").split()) for f in SEED_FILES[:2])
    assert seg.cut(text) == reference.cut(text)


def test_both_viterbi_implementations_match_pkuseg(reference, seg, monkeypatch):
    """The plain-Python (few segments) and numpy (many segments) decoders are both exact."""
    model = seg._model
    text = SEED_FILES[0].read_text(encoding="utf-8")
    expected = reference.cut(text)
    for name in ("_viterbi_python", "_viterbi_numpy"):
        monkeypatch.setattr(model, "viterbi", getattr(model, name))
        assert seg.cut(text) == expected, name
        for line in SEED_LINES[:60]:
            assert seg.cut(line) == reference.cut(line), (name, line)


def test_batches_of_segments_identical(reference, seg, monkeypatch):
    """Long texts are segmented in batches of segments: no effect on the result."""
    monkeypatch.setattr(segment, "_BATCH_CHARS", 300)
    for f in SEED_FILES[:2]:
        text = f.read_text(encoding="utf-8")
        assert seg.cut(text) == reference.cut(text)


def test_cut_many_equals_cut(seg):
    texts = SEED_LINES[:50] + TRICKY
    assert seg.cut_many(texts) == [seg.cut(t) for t in texts]
    assert seg.spans_many(texts) == [seg.spans(t) for t in texts]
    assert seg.cut_many([]) == []


def with_user_dict(reference, words):
    """``pkuseg.pkuseg(user_dict=words)`` without loading the model again: the user dictionary
    only changes the Preprocesser (the post-processing dictionary is the same)."""
    ref = copy.copy(reference)
    ref.preprocesser = pkuseg.Preprocesser(words)
    return ref


def test_user_words_kept_whole_like_pkuseg(reference):
    words = ["棉纺路街道", "党建引领", "ab", "abcd"]
    ours = segment.Segmenter(words)
    ref = with_user_dict(reference, words)
    texts = (
        [
            "郑州市棉纺路街道党工委坚持党建引领",
            "棉纺路街道棉纺路街道",
            "abcx abcd ab",  # pkuseg quirk: "abc" is forced (the trie walk ran past "ab")
        ]
        + SEED_LINES[:100]
    )
    for text in texts:
        assert ours.cut(text) == ref.cut(text), text
    assert "棉纺路街道" in ours.cut("郑州市棉纺路街道党工委")

    later = segment.Segmenter()
    assert later.cut("推行网格长制管理") == ["推行", "网格", "长制", "管理"]
    later.add_words(["网格长制"])
    assert later.cut("推行网格长制管理") == ["推行", "网格长制", "管理"]


def test_spans_map_back_to_text(seg):
    for text in SEED_LINES[:200] + TRICKY:
        spans = seg.spans(text)
        tokens = seg.cut(text)
        assert [text[a:b] for a, b in spans] == tokens
        assert all(a < b for a, b in spans)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
        # every non-whitespace character is in exactly one token; whitespace in none
        assert "".join(tokens) == "".join(text.split())
        assert not any(ch.isspace() for tok in tokens for ch in tok)


def test_whitespace_split_like_str_split(seg):
    every_space = "".join(chr(c) for c in range(0x3100) if chr(c).isspace())
    text = every_space.join(["甲", "乙", "丙丁"]) + every_space
    assert seg.cut(text) == text.split()


def test_spacy_tokens_are_character_offsets():
    nlp = segment.make_nlp(["棉纺路街道"])
    assert isinstance(nlp.tokenizer, segment.PkusegTokenizer)
    seg = segment.load_segmenter(["棉纺路街道"])
    texts = SEED_LINES[:200] + TRICKY + ["  郑州市 棉纺路街道\n\n党工委  END "]
    for text in [t for t in texts if "\ud800" not in t]:  # spaCy cannot store lone surrogates
        doc = nlp(text)
        assert doc.text == text
        words = [t for t in doc if not t.is_space]
        assert [(t.idx, t.idx + len(t.text)) for t in words] == seg.spans(text)
        assert [t.text for t in words] == seg.cut(text)
    assert "棉纺路街道" in [t.text for t in nlp("郑州市棉纺路街道党工委")]
    texts = SEED_LINES[:50]
    piped = list(nlp.tokenizer.pipe(texts, batch_size=16))
    assert [[t.text for t in d] for d in piped] == [[t.text for t in nlp(x)] for x in texts]


def test_spacy_blank_zh_and_serialisation(tmp_path):
    assert spacy.blank("zh").lang == "zh"  # offline, no segmenter download
    nlp = segment.make_nlp(["棉纺路街道"])
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.tokenizer.user_words == ["棉纺路街道"]
    assert [t.text for t in loaded("棉纺路街道党工委")] == ["棉纺路街道", "党工委"]
    again = segment.make_nlp().from_bytes(nlp.to_bytes())
    assert again.tokenizer.user_words == ["棉纺路街道"]


def test_fast_pickle_reader_matches_pickle(reference):
    """The streaming features.pkl reader yields what pickle.load gives pkuseg."""
    fe = reference.feature_extractor
    n_feature = len(fe.feature_to_idx)
    unigram, tag_to_idx, chunks = segment._read_features_fast(
        segment.model_dir() / "features.pkl", n_feature
    )
    assert set(unigram) == fe.unigram
    assert tag_to_idx == fe.tag_to_idx
    keys = iter(fe.feature_to_idx.items())
    seen = 0
    for ids, text in chunks:
        for i, key in zip(ids.tolist(), text.split(segment._SEP)[:-1], strict=True):
            assert (key, i) == next(keys)
            seen += 1
    assert seen == n_feature


def test_cache_round_trip(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("JICENG_CACHE_DIR", str(tmp_path))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(segment._ensure_cache()))]
    threads.append(threading.Thread(target=lambda: results.append(segment._ensure_cache())))
    for t in threads:  # two concurrent first runs: one builds, the other waits and reuses it
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    path = results[0]
    assert path.parent == tmp_path and path.name.startswith("pkuseg-default-")
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [path.name]  # no temp dirs left
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == segment.FORMAT_VERSION
    assert meta["reader"] == "stream"
    assert meta["weight_scale"] == 10000.0  # pkuseg's weights are on a 1e-4 grid

    # the cached weights are pkuseg's, bit for bit
    weights = np.load(path / "weights.npy", mmap_mode="r")
    w = reference.model.w
    n_node = reference.n_feature * reference.n_tag
    assert np.array_equal(weights[:-1].reshape(-1) / meta["weight_scale"], w[:n_node])
    assert not weights[-1].any()

    seg = segment.Segmenter()  # loads from tmp_path (the env var is read at load time)
    assert seg._model.path == path
    for line in SEED_LINES[:100] + TRICKY:
        assert seg.cut(line) == reference.cut(line)


def test_cache_build_is_deterministic(tmp_path, monkeypatch):
    # The build parses chunks in two threads; a race once misaligned feature keys and ids.
    built = []
    for name in ("a", "b"):
        monkeypatch.setenv("JICENG_CACHE_DIR", str(tmp_path / name))
        built.append(segment._ensure_cache())
    files = sorted(p.name for p in built[0].glob("*.npy"))
    assert files == sorted(p.name for p in built[1].glob("*.npy"))
    for name in files:
        assert (built[0] / name).read_bytes() == (built[1] / name).read_bytes(), name
