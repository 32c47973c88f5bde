"""kg.ingest: raw newspaper text -> clean, addressable sentences (real seeds, no mocks)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.ingest import IngestError, char_matches, ingest_file, parse_document, read_text

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))


def seed(prefix: str):
    (path,) = [p for p in SEEDS if p.name.startswith(prefix)]
    return ingest_file(path)


def texts(doc) -> list[str]:
    return [s.text for s in doc.sentences]


def sentence_with(doc, fragment: str):
    found = [s for s in doc.sentences if fragment in s.text]
    assert found, f"no sentence contains {fragment!r}"
    return found[0]


def assert_offsets_valid(doc) -> None:
    raw = doc.raw
    for k, s in enumerate(doc.sentences):
        assert s.index == k
        assert s.text and len(s.offsets) == len(s.text)
        assert s.start == s.offsets[0] and s.end == s.offsets[-1] + 1
        for ch, o in zip(s.text, s.offsets, strict=True):
            assert 0 <= o < len(raw)
            assert char_matches(raw[o], ch), (raw[o], ch, s.text)


# ------------------------------------------------------------------ the seeds


def test_all_seeds_parse_with_valid_offsets():
    assert len(SEEDS) == 5
    for path in SEEDS:
        doc = ingest_file(path)
        assert doc.doc_id == path.stem and doc.raw == path.read_text(encoding="utf-8")
        assert doc.sentences
        assert_offsets_valid(doc)
        paragraphs = [s.paragraph for s in doc.sentences]
        assert paragraphs == sorted(paragraphs)


def test_offsets_increase_within_each_sentence():
    """Cleaning only drops or maps characters, so offsets keep raw order."""
    for path in SEEDS:
        for s in ingest_file(path).sentences:
            assert all(a < b for a, b in zip(s.offsets, s.offsets[1:], strict=False))


# ------------------------------------------------------- column-break rejoining


def test_column_break_rejoined_in_seed_000():
    doc = seed("000")
    assert "随处可见" in sentence_with(doc, "网红打卡地").text
    assert not any("\n" in t for t in texts(doc))
    # a column break with a blank line in between
    assert "党组织第一时间进入战时状态" in sentence_with(doc, "战时状态").text
    assert "身先士卒" in sentence_with(doc, "果断处置").text


def test_column_break_across_blank_line_in_003_and_001():
    assert "为“轴心”，社区党组织" in sentence_with(seed("003"), "扇面").text
    assert "着力提升公共服务" in sentence_with(seed("003"), "心齐干事").text
    assert "党建与企业改革“双促进”" in sentence_with(seed("001"), "双促进").text


def test_column_break_synthetic():
    doc = parse_document("城市基层治理要着力加强基层治\n理，让群众随\n处可见变化。\n", "t")
    assert texts(doc) == ["城市基层治理要着力加强基层治理，让群众随处可见变化。"]
    doc = parse_document("守土尽责、凝心聚力。全市党组织第一时间\n\n进入战时状态。\n", "t")
    assert texts(doc) == ["守土尽责、凝心聚力。", "全市党组织第一时间进入战时状态。"]
    # a lone short unpunctuated line is a headline, not half a sentence
    doc = parse_document("党组织第一时间\n\n进入战时状态。\n", "t")
    assert texts(doc) == ["党组织第一时间", "进入战时状态。"]


def test_caption_between_columns_is_set_aside():
    doc = seed("002")
    s = sentence_with(doc, "40.92亿")
    assert "计划总投资40.92亿元，市重点项目2个" in s.text
    caption = sentence_with(doc, "党员重温入党誓词")
    assert caption.text == "郑州中央文化区（CCD）“四个中心”联合党委成立仪式上，党员重温入党誓词。"


# -------------------------------------------------------------------- headings


def test_headlines_and_bylines_stay_separate():
    doc = seed("003")
    for heading in ("走出农村公共服务体系建设新路子", "新郑市城关乡党委书记 马东亮"):
        (s,) = [s for s in doc.sentences if s.text == heading]
        assert s.is_heading
    body = sentence_with(doc, "城关乡因地制宜")
    assert body.text.startswith("城关乡因地制宜") and not body.is_heading


def test_label_headings_and_markdown_headings():
    doc = seed("001")
    s = sentence_with(doc, "强堡垒：")
    assert s.is_heading and s.text.endswith("内生动力")
    doc = seed("002")
    s = sentence_with(doc, "扛稳全面从严治党主体责任")
    assert s.is_heading and s.text == "扛稳全面从严治党主体责任"
    assert not any("#" in t for t in texts(doc))


def test_multi_line_headline_block_and_synthetic_heading():
    doc = seed("000")
    assert {"聚焦聚力城市治理", "让城市美起来靓起来"} <= set(texts(doc))
    doc = parse_document("标题在这里\n\n正文开始，内容如下。\n", "t")
    assert texts(doc) == ["标题在这里", "正文开始，内容如下。"]
    assert [s.is_heading for s in doc.sentences] == [True, False]
    assert doc.title == "标题在这里"


# ---------------------------------------------------------------------- dedup


def test_indentation_starts_paragraphs():
    doc = parse_document("第一段结束。\n 这奋进 年\n 基层党组织能力强\n不强，是试金石。\n", "t")
    assert texts(doc) == ["第一段结束。", "这奋进 年", "基层党组织能力强不强，是试金石。"]
    assert [s.paragraph for s in doc.sentences] == [0, 1, 2]
    # every line indented: one paragraph per finished line, breaks still rejoined
    doc = parse_document("\u3000\u3000甲段内容。\n\u3000\u3000乙段被\n\u3000\u3000截断了。\n", "t")
    assert texts(doc) == ["甲段内容。", "乙段被截断了。"]
    assert [s.paragraph for s in doc.sentences] == [0, 1]


def test_dedup_seed_001():
    doc = seed("001")
    assert doc.duplicates_dropped > 0
    all_texts = texts(doc)
    assert len(all_texts) == len(set(all_texts))
    assert not any(set(t) <= {"…", "。"} for t in all_texts)


def test_dedup_synthetic_counts_repeats_not_ellipses():
    raw = "第一段内容。\n\n……\n\n第一段内容。\n\n……\n\n第二段。\n"
    doc = parse_document(raw, "t")
    assert texts(doc) == ["第一段内容。", "第二段。"]
    assert doc.duplicates_dropped == 1
    assert [s.paragraph for s in doc.sentences] == [0, 1]


# ----------------------------------------------------------- spaces, punctuation


def test_stray_spaces_dropped_but_byline_spaces_kept():
    doc = seed("000")
    assert "全市202个乡镇（街道）" in sentence_with(doc, "202个乡镇").text
    assert "2.9万名医护人员" in sentence_with(doc, "医护人员").text
    doc = parse_document("我们 使用 App Store 下载 2 个应用。\n", "t")
    assert texts(doc) == ["我们使用App Store下载2个应用。"]
    assert "本报记者 孙志刚 通讯员 蔚光勋 文图" in texts(seed("002"))


def test_ascii_punctuation_normalised_between_cjk():
    doc = seed("002")
    s = sentence_with(doc, "逐村")
    assert "逐村（社区）观摩" in s.text and "(" not in s.text
    k = s.text.index("（")
    assert doc.raw[s.offsets[k]] == "("  # 1:1, offsets still point at the raw char
    assert "，" in s.text and "," not in s.text
    doc = parse_document("数值为1,000,时间8:30 (ok), 共计(社区)3个.", "t")
    assert texts(doc) == ["数值为1,000，时间8:30 (ok)，共计（社区）3个."]


# ------------------------------------------------------------------ sentences


def test_sentence_splitting_rules():
    raw = "他说：“好。”然后走了！真的吗？第一项；第二项；\n"
    doc = parse_document(raw, "t")
    assert texts(doc) == ["他说：“好。”", "然后走了！", "真的吗？", "第一项；", "第二项；"]
    long = "，".join(["基层治理"] * 200) + "。"
    pieces = texts(parse_document(long, "t"))
    assert all(len(p) <= 300 for p in pieces) and "".join(pieces) == long


# ------------------------------------------------------------------- metadata


def test_metadata_002():
    doc = seed("002")
    assert doc.title == "以高质量党建引领 保障“四个中原”高质量发展"
    assert doc.bylines == ["孙志刚", "蔚光勋", "魏少杰"]
    assert doc.date == "2021"


def test_metadata_003_004_001():
    doc = seed("003")
    assert doc.title == "不断提升基层治理能力 营造安居乐业良好环境"
    assert doc.date == "2020-10-15"
    assert doc.bylines == []
    doc = seed("004")
    assert doc.title == "为民造福 不断增强人民群众的认同感幸福感获得感"
    assert doc.date == "2020-06-29"
    doc = seed("001")
    assert doc.title == "郑州城市基层党建创新之路"
    assert doc.bylines == ["曹继慧"]


def test_date_rules_synthetic():
    assert parse_document("会议于2019年3月5日召开。", "t").date == "2019-03-05"
    assert parse_document("3月5日，2019年第一次会议召开。", "t").date == "2019-03-05"
    assert parse_document("2016年以来成效明显。2020年继续。到2035年实现。", "t").date == "2020"
    assert parse_document("没有日期。", "t").date is None


# --------------------------------------------------------------------- errors


def test_ingest_errors(tmp_path: Path):
    def problem(path: Path) -> str:
        with pytest.raises(IngestError) as e:
            read_text(path)
        message = str(e.value)
        assert "\n" not in message and str(path) in message
        return message

    assert "no such file" in problem(tmp_path / "missing.txt")
    assert "directory" in problem(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_bytes("中文".encode() + b"\xff rest")
    assert "not UTF-8: invalid byte 0xff at byte offset 6" in problem(bad)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert "empty file" in problem(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\u3000\n", encoding="utf-8")
    assert "empty file" in problem(blank)
    nul = tmp_path / "nul.bin"
    nul.write_bytes(b"abc\x00def")
    assert "binary file, not text" in problem(nul)
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("中文".encode("utf-16"))
    assert "not UTF-8: invalid byte 0xff at byte offset 0" in problem(utf16)
    controls = tmp_path / "ctl.bin"
    controls.write_bytes(bytes(range(1, 9)) * 20 + "正文".encode())
    assert "binary file, not text" in problem(controls)


def test_bom_is_stripped_and_offsets_index_the_returned_text(tmp_path: Path):
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + "标题\n\n正文内容。\n".encode())
    doc = ingest_file(path)
    assert doc.raw == "标题\n\n正文内容。\n" and doc.doc_id == "bom"
    assert_offsets_valid(doc)
    bad = tmp_path / "bombad.txt"
    bad.write_bytes(codecs.BOM_UTF8 + b"ab\xfe")
    with pytest.raises(IngestError, match="invalid byte 0xfe at byte offset 5"):
        read_text(bad)


# ------------------------------------------------------------------ robustness

_ALPHABET = st.sampled_from(
    list("中文党建街道社区，。！？；：、“”（）《》……——·#")
    + list("abcXYZ019 ,.;:!?()\"'")
    + ["\n", "\n\n", "\n\n\n", "\r\n", "\t", "\u3000", "\x00", "\x1b", "\u200b", "\ufeff"]
    + ["\u2028", "\U00020000", "\ud7ff", "é", "# ", "## "]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.lists(_ALPHABET, max_size=120).map("".join)))
def test_arbitrary_text_never_crashes(raw: str):
    doc = parse_document(raw, "fuzz")
    assert_offsets_valid(doc)
    assert doc.date is None or doc.date[:4].isdigit()


def test_huge_single_line():
    raw = "基层治理，" * 200_000  # 1 MB of text, no stop and no line break
    doc = parse_document(raw, "big")
    assert all(len(s.text) <= 300 for s in doc.sentences)
    assert sum(len(s.text) for s in doc.sentences) == len(raw)
    s = doc.sentences[-1]
    assert all(doc.raw[o] == ch for o, ch in zip(s.offsets, s.text, strict=True))
