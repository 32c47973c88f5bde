"""Chinese word segmentation: pkuseg's ``default`` model with a compact, memory-mapped model cache.

``Segmenter.cut(text)`` returns exactly what ``pkuseg.pkuseg(user_dict=words).cut(text)`` returns,
but the model loads in well under a second and takes a fraction of the memory.

Why: pkuseg unpickles ``features.pkl`` into a Python dict of 2.6 M feature strings
(plus a 1.1 M-entry bigram list it never uses at inference), which costs 2.5-5 s and ~800 MB RSS.

How:

* **Cache** (built once per pkuseg install, by a child process so the caller's peak RSS is untouched).
  The child does not unpickle ``features.pkl``: it walks the pickle byte stream, skips the unused bigram
  list, and reads the feature keys in place (falling back to ``pickle.load`` if the stream layout
  is not the expected one). Every feature string is parsed into an integer key:

  - character templates (``c.X``, ``c-1c.X.Y`` ...): ``(template, code point, code point)``,
    with ``**Num``/``**Letter`` as two extra code points past U+10FFFF;
  - word templates (``w-1.W``, ``ww.l.A*B`` ...): ``(template, word id[, word id])`` where word ids come
    from a trie (sorted edge-key array) of the unigram words that text can actually produce.

  Keys are stored sorted (``np.searchsorted`` lookups), weights as float64 (bit-identical scores), all
  as ``.npy`` files opened with ``mmap_mode="r"``. Features that can never fire (keyword/number/
  letter characters that pkuseg normalises away) or whose weights are all zero are dropped.
  Location: ``$JICENG_CACHE_DIR`` or ``$XDG_CACHE_HOME/jiceng`` or ``~/.cache/jiceng``, in
  ``pkuseg-default-<size>-<mtime>-v<format>/``; written to a temp dir and renamed into place under a
  file lock, so concurrent first runs are safe.

* **Inference**, vectorised per ``cut`` call over all segments of the text: normalise characters,
  walk the word trie, look up all feature keys, accumulate node scores *in pkuseg's feature order*
  (so the float64 sums are bit-identical), then a batched numpy Viterbi with pkuseg's tie-breaking.
  Then pkuseg's post-processing (merge adjacent tokens that form a word of ``dicts/default.pkl``,
  unless every part is itself such a word), and its user-dictionary pre-splitting.

Whitespace is pkuseg's: the text is split on ``str.split()`` whitespace (Unicode ``isspace``: spaces,
tabs, newlines, U+3000 ...), every run is segmented on its own, and whitespace never appears inside or
as a token. ``spans`` gives each token's ``(start, end)`` offsets in the original text, so
``text[start:end] == token``; the spaCy tokenizer turns the whitespace between tokens back into
``Doc`` spaces / whitespace tokens so that ``doc.text == text``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

if __name__ != "__main__":
    # The cache-builder child process runs this file as a script and has no use for spaCy.
    import spacy
    from spacy.language import Language
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

__all__ = [
    "Segmenter",
    "PkusegTokenizer",
    "cache_root",
    "load_segmenter",
    "make_nlp",
    "model_dir",
]

FORMAT_VERSION = 1

# Node code points: Unicode code points, plus two pseudo code points for pkuseg's normalised classes.
_NUM = 0x110000  # "**Num"
_LETTER = 0x110001  # "**Letter"
_NC = 0x110002  # code point radix in the integer feature keys

# Character-feature templates (key = (template * NC + a) * NC + b; unary ones use b = 0).
_CHAR_TEMPLATES = {
    "c.": 0,
    "c-1.": 1,
    "c1.": 2,
    "c-2.": 3,
    "c2.": 4,
    "c-1c.": 5,
    "cc1.": 6,
    "c-2c-1.": 7,
}
_UNARY = {"c.", "c-1.", "c1.", "c-2.", "c2."}
_WORD_TEMPLATES = {"w-1.": 0, "w1.": 1}
_WW_TEMPLATES = {"ww.l.": 0, "ww.r.": 1}

# Word ids: 0 = "**noWord" (not a unigram word), 1 = "" (out-of-range slice, which is a pkuseg
# unigram word!), 2.. = real words.
_NOWORD = 0
_EMPTY = 1

# Runs of non-whitespace as str.split() finds them (re's \s is Py_UNICODE_ISSPACE, like str.split).
_NON_SPACE = re.compile(r"\S+")


# --------------------------------------------------------------------------------------------
# Locating the model and the cache
# --------------------------------------------------------------------------------------------


def _pkuseg_dir() -> Path:
    """Directory of the installed ``pkuseg`` package, found without importing it (0.2 s)."""
    mod = sys.modules.get("pkuseg")
    origin = getattr(mod, "__file__", None) if mod is not None else None
    if origin is None:
        spec = importlib.util.find_spec("pkuseg")
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError("pkuseg is not installed")
        origin = spec.origin
    return Path(os.path.dirname(os.path.realpath(origin)))


def model_dir() -> Path:
    """pkuseg's bundled ``default`` model directory (``features.pkl``, ``weights.npz``)."""
    return _pkuseg_dir() / "models" / "default"


def _dict_path() -> Path:
    return _pkuseg_dir() / "dicts" / "default.pkl"


def cache_root() -> Path:
    env = os.environ.get("JICENG_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "jiceng" if xdg else Path.home() / ".cache" / "jiceng"


def _cache_name(mdir: Path) -> str:
    stats = [os.stat(mdir / f) for f in ("features.pkl", "weights.npz")]
    size = sum(s.st_size for s in stats)
    mtime = max(int(s.st_mtime) for s in stats)
    return f"pkuseg-default-{size}-{mtime}-v{FORMAT_VERSION}"


def _ensure_cache(mdir: Path | None = None, root: Path | None = None) -> Path:
    """Return the cache directory for ``mdir``, building it (once, atomically) if needed."""
    mdir = model_dir() if mdir is None else Path(mdir)
    root = cache_root() if root is None else Path(root)
    final = root / _cache_name(mdir)
    if (final / "meta.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{final.name}.lock"):
        if (final / "meta.json").is_file():  # another process built it while we waited
            return final
        if final.exists():  # debris (e.g. someone deleted files by hand)
            shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
        try:
            _build_cache_in_child(mdir, tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "meta.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the atomic rename alone keeps the cache consistent
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _build_cache_in_child(mdir: Path, out: Path) -> None:
    """Build in a separate process: its transient ~300 MB never count against the caller's RSS."""
    if not sys.executable:
        build_cache(mdir, out)
        return
    script = os.path.realpath(__file__)
    cmd = [sys.executable, "-P", script, "--build-cache", str(mdir), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"building the pkuseg model cache failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}"
        )


# --------------------------------------------------------------------------------------------
# Cache builder
# --------------------------------------------------------------------------------------------

_SEP = "\x00"  # separator when decoding feature keys in bulk (no feature contains NUL)


def _read_unframed(path: Path) -> bytearray | None:
    """A protocol-4+ pickle with its FRAME headers removed, compacted in place (None if the file
    is not framed throughout)."""
    size = os.path.getsize(path)
    data = bytearray(size)
    with open(path, "rb") as fh:
        if fh.readinto(data) != size:
            return None
    if size < 2 or data[0] != 0x80 or data[1] < 4:
        return None
    pos = dst = 2
    while pos < size:
        if data[pos] != 0x95:  # FRAME
            return None
        (n,) = struct.unpack_from("<Q", data, pos + 1)
        data[dst : dst + n] = data[pos + 9 : pos + 9 + n]
        dst += n
        pos += 9 + n
    del data[dst:]
    del data[:2]  # PROTO
    return data


def _key_op(name: str) -> bytes:
    b = name.encode()
    return b"\x8c" + bytes([len(b)]) + b + b"\x94"  # SHORT_BINUNICODE name, MEMOIZE


class _FastPathFailed(Exception):
    pass


def _read_features_fast(path: Path, n_feature: int):
    """Read ``features.pkl`` without materialising it.

    Expected layout (pkuseg's ``FeatureExtractor.save``: a dict pickled with protocol 4):
    ``{"unigram": [...], "bigram": [...], "feature_to_idx": {key: 0, key: 1, ...}, "tag_to_idx": {...}}``
    with ``feature_to_idx`` values 0..n-1 in insertion order. Every assumption is verified; any
    mismatch raises ``_FastPathFailed`` (the caller then uses ``pickle.load``).

    Returns ``(unigram list, tag_to_idx dict, iterator of (ids, keys))`` where each chunk's keys
    are one string, every key followed by ``_SEP``.
    """
    buf = _read_unframed(path)
    if buf is None or len(buf) >= 2**31:
        raise _FastPathFailed("not a framed protocol-4 pickle")
    # Top-level keys. A list value ends with APPENDS/APPEND ("e"/"a") right before the next key;
    # that tells the real keys from look-alike strings inside the lists. "tag_to_idx" is last.
    offs, pos = {}, 0
    for name, before in (("unigram", b"("), ("bigram", b"ea"), ("feature_to_idx", b"ea")):
        pat = _key_op(name)
        pos = buf.find(pat, pos)
        while pos > 0 and buf[pos - 1] not in before:
            pos = buf.find(pat, pos + 1)
        if pos <= 0:
            raise _FastPathFailed(f"key {name!r} not found")
        offs[name] = (pos, pos + len(pat))
    pat = _key_op("tag_to_idx")
    pos = buf.rfind(pat)
    offs["tag_to_idx"] = (pos, pos + len(pat))
    if not (
        buf[:3] == b"}\x94("  # EMPTY_DICT MEMOIZE MARK
        and offs["unigram"][0] == 3
        and offs["feature_to_idx"][0] < offs["tag_to_idx"][0]
        and buf[offs["feature_to_idx"][1]] == 0x7D  # EMPTY_DICT
        and buf.endswith(b"u.")
    ):
        raise _FastPathFailed("unexpected top-level layout")

    # unigram: unpickle just that slice (it memoizes but never refers back to the memo).
    try:
        unigram = pickle.loads(b"\x80\x04" + buf[offs["unigram"][1] : offs["bigram"][0]] + b".")
    except Exception as exc:
        raise _FastPathFailed(f"unigram: {exc}") from exc
    if not isinstance(unigram, list) or not all(isinstance(w, str) for w in unigram):
        raise _FastPathFailed("unigram is not a list of str")
    # tag_to_idx refers to unigram strings through the memo (pkuseg's "B" and "I" are the same
    # objects as the unigram words "B" and "I"): memo slot 3 + i is unigram[i] (0: top dict,
    # 1: "unigram", 2: the list). The pure-Python unpickler lets us preset the memo.
    unpickler = pickle._Unpickler(
        io.BytesIO(b"\x80\x04" + buf[offs["tag_to_idx"][1] : len(buf) - 2] + b".")
    )
    unpickler.memo = {3 + i: w for i, w in enumerate(unigram)}
    try:
        tag_to_idx = unpickler.load()
    except Exception as exc:
        raise _FastPathFailed(f"tag_to_idx: {exc}") from exc
    del unpickler
    if not isinstance(tag_to_idx, dict):
        raise _FastPathFailed("tag_to_idx is not a dict")

    # feature_to_idx: '}' MEMOIZE, then batches '(' (key MEMOIZE int)*1000 'u' (or key int 's').
    # The loop only finds where each key starts; everything else is checked vectorised below.
    start, end = offs["feature_to_idx"][1], offs["tag_to_idx"][0]
    starts = np.empty(n_feature, dtype=np.int32)
    pos, b, k = start, buf, 0
    try:
        while k < n_feature:
            op = b[pos]
            if op == 0x8C:  # SHORT_BINUNICODE
                starts[k] = pos
                pos += 3 + b[pos + 1]  # op, len, payload, MEMOIZE
                op = b[pos]
                pos += 5 if op == 0x4A else 3 if op == 0x4D else 2  # BININT / BININT2 / BININT1
                k += 1
            elif op in (0x28, 0x75, 0x73, 0x7D, 0x94):  # MARK SETITEMS SETITEM EMPTY_DICT MEMOIZE
                pos += 1
            else:
                raise _FastPathFailed(f"unexpected opcode {op:#x} at {pos}")
    except IndexError as exc:
        raise _FastPathFailed("truncated feature dict") from exc
    if pos > end or buf[pos:end].strip(b"us") != b"":
        raise _FastPathFailed("feature dict does not end where tag_to_idx starts")
    arr = np.frombuffer(buf, dtype=np.uint8)
    step = 1 << 18
    for lo in range(0, n_feature, step):
        st = starts[lo : lo + step].astype(np.int64)
        intpos = st + 3 + arr[st + 1]
        ops = arr[intpos]
        b1, b2, b3, b4 = (arr[np.minimum(intpos + i, len(arr) - 1)].astype(np.int64) for i in range(1, 5))
        vals = np.where(ops == 0x4B, b1, np.where(ops == 0x4D, b1 | b2 << 8, 0))
        vals = np.where(ops == 0x4A, b1 | b2 << 8 | b3 << 16 | b4 << 24, vals)
        if not (np.all(arr[intpos - 1] == 0x94) and np.array_equal(vals, np.arange(lo, lo + len(st)))):
            raise _FastPathFailed("feature dict items do not verify")

    def chunks():
        for lo in range(0, n_feature, step):
            p0 = starts[lo : lo + step].astype(np.int64) + 2  # payload starts
            p1 = p0 + arr[p0 - 1]  # MEMOIZE byte after each payload: becomes the separator
            base, top = int(p0[0]), int(p1[-1]) + 1
            region = arr[base:top].copy()
            region[p1 - base] = 0
            delta = np.zeros(top - base + 1, dtype=np.int8)
            delta[p0 - base] = 1
            delta[p1 + 1 - base] = -1
            keep = np.cumsum(delta[:-1], dtype=np.int8).astype(bool)
            text = region[keep].tobytes().decode("utf-8", "surrogatepass")
            yield np.arange(lo, lo + len(p0), dtype=np.int64), text

    return unigram, tag_to_idx, chunks()


def _read_features_slow(path: Path):
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    keys = list(data["feature_to_idx"])
    ids = np.fromiter(data["feature_to_idx"].values(), dtype=np.int64, count=len(keys))
    unigram, tag_to_idx = data["unigram"], data["tag_to_idx"]
    del data

    def chunks(step: int = 1 << 18):
        for lo in range(0, len(keys), step):
            yield ids[lo : lo + step], _SEP.join(keys[lo : lo + step]) + _SEP

    return unigram, tag_to_idx, chunks()


def _u32(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _prefix_mask(
    codes: np.ndarray, a: np.ndarray, b: np.ndarray, s: str, cand: np.ndarray | None = None
) -> np.ndarray:
    """Which spans codes[a:b] start with ``s`` (codes is padded with >= len(s) zeros).
    ``cand``: indices of the only spans that may match."""
    idx = np.flatnonzero((b - a) >= len(s)) if cand is None else cand[(b - a)[cand] >= len(s)]
    for i, ch in enumerate(s):
        idx = idx[codes[a[idx] + i] == ord(ch)]
    m = np.zeros(len(a), dtype=bool)
    m[idx] = True
    return m


def _node_token(codes, q, b):
    """Parse one node token at q: (code point, length); length 0 = invalid. Vectorised."""
    is_num = _prefix_mask(codes, q, b, "**Num")
    is_let = _prefix_mask(codes, q, b, "**Letter")
    cp = np.where(is_num, _NUM, np.where(is_let, _LETTER, codes[q].astype(np.int64)))
    ln = np.where(is_num, 5, np.where(is_let, 8, 1))
    ln = np.where(q < b, ln, 0)
    return cp, ln


class _Trie:
    """Word trie over node code points, stored as a sorted array of ``parent * NC + cp`` edge keys."""

    def __init__(self, keys: np.ndarray, child: np.ndarray, wid: np.ndarray) -> None:
        self.keys, self.child, self.wid = keys, child, wid

    @classmethod
    def build(cls, words: Sequence[str]) -> _Trie:
        # words[i] gets word id 2 + i
        n = len(words)
        codes = _u32(_SEP.join(words) + _SEP) if n else np.zeros(0, np.uint32)
        lens = np.fromiter(map(len, words), dtype=np.int64, count=n)
        starts = np.cumsum(lens + 1) - (lens + 1)
        maxlen = int(lens.max()) if n else 0
        node = np.zeros(n, dtype=np.int64)  # current trie node of each word (root = 0)
        n_nodes = 1
        all_keys, all_child = [], []
        wid = [np.full(1, _NOWORD, dtype=np.int32)]
        for depth in range(maxlen):
            sel = np.flatnonzero(lens > depth)
            keys = node[sel] * _NC + codes[starts[sel] + depth]
            uniq, inv = np.unique(keys, return_inverse=True)
            child = n_nodes + np.arange(len(uniq), dtype=np.int64)
            node[sel] = child[inv]
            level_wid = np.full(len(uniq), _NOWORD, dtype=np.int32)
            ends = lens[sel] == depth + 1
            level_wid[inv[ends]] = 2 + sel[ends]
            all_keys.append(uniq)
            all_child.append(child)
            wid.append(level_wid)
            n_nodes += len(uniq)
        keys = np.concatenate(all_keys) if all_keys else np.zeros(0, np.int64)
        child = np.concatenate(all_child) if all_child else np.zeros(0, np.int64)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], child[order].astype(np.int32), np.concatenate(wid))

    def step(self, state: np.ndarray, cp: np.ndarray) -> np.ndarray:
        """Child of each state along cp, or -1."""
        key = state.astype(np.int64) * _NC + cp
        idx = np.searchsorted(self.keys, key)
        idx[idx >= len(self.keys)] = 0
        hit = self.keys[idx] == key if len(self.keys) else np.zeros(len(key), bool)
        return np.where(hit, self.child[idx] if len(self.keys) else 0, -1)

    def lookup(self, codes: np.ndarray, a: np.ndarray, b: np.ndarray, max_len: int) -> np.ndarray:
        """Word id of each span codes[a:b] (``_NOWORD`` if none; ``_EMPTY`` for empty spans)."""
        out = np.full(len(a), _NOWORD, dtype=np.int64)
        ln = b - a
        out[ln == 0] = _EMPTY
        sel = np.flatnonzero((ln >= 1) & (ln <= max_len))
        state = np.zeros(len(sel), dtype=np.int64)
        for depth in range(max_len):
            if not len(sel):
                break
            more = ln[sel] > depth
            sel, state = sel[more], state[more]
            nxt = self.step(state, codes[a[sel] + depth].astype(np.int64))
            ok = nxt >= 0
            sel, state = sel[ok], nxt[ok]
            done = ln[sel] == depth + 1
            out[sel[done]] = self.wid[state[done]]
            sel, state = sel[~done], state[~done]
        return out


def build_cache(mdir: Path, out: Path) -> None:
    """Convert pkuseg's model in ``mdir`` into the compact cache files in ``out`` (must exist)."""
    from pkuseg.config import config
    from pkuseg.feature_extractor import FeatureExtractor

    mdir, out = Path(mdir), Path(out)
    if not (config.numLetterNorm and config.wordFeature and config.delimInFeature == "."):
        raise NotImplementedError("unsupported pkuseg feature configuration")
    word_min, word_max = int(config.wordMin), int(config.wordMax)

    # Weights first (then freed): pkuseg's node weights, row = feature id, plus an all-zero row
    # (id n_feature) that stands for "feature absent". Written in chunks to keep RSS low.
    npz = np.load(mdir / "weights.npz")
    n_tag, n_feature = (int(x) for x in npz["sizes"])
    w = np.asarray(npz["w"], dtype=np.float64)
    del npz
    if w.shape != (n_tag * (n_feature + n_tag),):
        raise ValueError("weights.npz: inconsistent sizes")
    node_w = w[: n_tag * n_feature].reshape(n_feature, n_tag)
    nonzero = (node_w != 0).any(axis=1)  # all-zero features add +0.0: no need to look them up
    np.save(out / "edge.npy", w[n_tag * n_feature :])
    with open(out / "weights.npy", "wb") as fh:
        header = {"descr": "<f8", "fortran_order": False, "shape": (n_feature + 1, n_tag)}
        np.lib.format.write_array_header_1_0(fh, header)
        for lo in range(0, n_feature, 1 << 18):
            fh.write(np.ascontiguousarray(node_w[lo : lo + (1 << 18)], dtype="<f8").tobytes())
        fh.write(np.zeros(n_tag, dtype="<f8").tobytes())
    zero = n_feature
    del w, node_w

    try:
        unigram, tag_to_idx, chunks = _read_features_fast(mdir / "features.pkl", n_feature)
        reader = "stream"
    except _FastPathFailed as exc:
        print(f"kg.segment: fast features.pkl reader not applicable ({exc})", file=sys.stderr)
        unigram, tag_to_idx, chunks = _read_features_slow(mdir / "features.pkl")
        reader = "pickle"

    keywords = FeatureExtractor.keywords
    num, letter = set(FeatureExtractor.num), set(FeatureExtractor.letter)
    bad_chars = set(keywords) | num | letter  # never a node: pkuseg rewrites them

    # Words that text can produce: word_min..word_max node chars, none of which is rewritten.
    # (No pkuseg unigram word contains "**Num"/"**Letter"; such a word would need node-token
    # parsing here, so refuse rather than silently mis-segment.)
    if any("**Num" in u or "**Letter" in u for u in unigram):
        raise NotImplementedError("unigram words containing **Num/**Letter")
    words = sorted(
        {u for u in unigram if word_min <= len(u) <= word_max and not (set(u) & bad_chars)}
    )
    has_empty = "" in unigram
    del unigram
    trie = _Trie.build(words)
    nwx = len(words) + 2

    bad_cp = np.zeros(_NC, dtype=bool)
    bad_cp[[ord(c) for c in bad_chars]] = True

    char_keys, char_ids = [], []
    word_fid = np.full((2, nwx), -1, dtype=np.int64)
    ww_keys, ww_ids = [], []
    n_dropped = 0
    for ids, text in chunks:
        keep = nonzero[ids]
        n_dropped += int((~keep).sum())
        codes = _u32(text)  # every key is followed by _SEP
        seps = np.flatnonzero(codes == 0)
        if len(seps) != len(ids):
            raise ValueError("feature key contains NUL")
        b = seps
        a = np.concatenate(([0], seps[:-1] + 1))
        codes = np.concatenate((codes, np.zeros(16, np.uint32)))  # padding for prefix tests
        # candidates per template: keys whose first "." is where the template's first "." is
        dots = np.flatnonzero(codes == ord("."))
        first_dot = dots[np.minimum(np.searchsorted(dots, a), len(dots) - 1)] - a
        by_dot = {n: np.flatnonzero(first_dot == n) for n in range(1, 7)}

        def matching(tpl):
            return _prefix_mask(codes, a, b, tpl, by_dot[tpl.index(".")]) & keep

        for tpl, t in _CHAR_TEMPLATES.items():
            m = matching(tpl)
            r, e = a[m] + len(tpl), b[m]
            cp1, l1 = _node_token(codes, r, e)
            if tpl in _UNARY:
                ok = (l1 > 0) & (r + l1 == e)
                key = (t * _NC + cp1) * _NC
            else:
                dot = r + l1
                cp2, l2 = _node_token(codes, dot + 1, e)
                ok = (l1 > 0) & (l2 > 0) & (codes[dot] == ord(".")) & (dot + 1 + l2 == e)
                key = (t * _NC + cp1) * _NC + cp2
                ok &= ~bad_cp[np.minimum(cp2, _NC - 1)] | (cp2 >= _NUM)
            ok &= ~bad_cp[np.minimum(cp1, _NC - 1)] | (cp1 >= _NUM)
            n_dropped += int((~ok).sum())
            char_keys.append(key[ok])
            char_ids.append(ids[m][ok])
        for tpl, t in _WORD_TEMPLATES.items():
            m = matching(tpl)
            wid = trie.lookup(codes, a[m] + len(tpl), b[m], word_max)
            ok = wid != _NOWORD
            n_dropped += int((~ok).sum())
            word_fid[t, wid[ok]] = ids[m][ok]
        stars = np.flatnonzero(codes == ord("*"))
        for tpl, t in _WW_TEMPLATES.items():
            m = matching(tpl)
            r, e = a[m] + len(tpl), b[m]
            noword_pre = _prefix_mask(codes, r, e, "**noWord*")
            si = np.searchsorted(stars, r)
            star = stars[np.minimum(si, len(stars) - 1)] if len(stars) else r
            has_star = (si < len(stars)) & (star < e)
            pre_end = np.where(noword_pre, r + 8, np.where(has_star, star, e))
            post_start = pre_end + 1
            pre = np.where(noword_pre, _NOWORD, trie.lookup(codes, r, pre_end, word_max))
            post = trie.lookup(codes, np.minimum(post_start, e), e, word_max)
            post_is_noword = _prefix_mask(codes, post_start, e, "**noWord") & (
                e - post_start == 8
            )
            post = np.where(post_is_noword, _NOWORD, post)
            ok = has_star | noword_pre
            ok &= (noword_pre | (pre != _NOWORD)) & (post_is_noword | (post != _NOWORD))
            n_dropped += int((~ok).sum())
            ww_keys.append((t * nwx + pre[ok]) * nwx + post[ok])
            ww_ids.append(ids[m][ok])
        del codes, stars

    char_keys, char_ids = np.concatenate(char_keys), np.concatenate(char_ids)
    ww_keys, ww_ids = np.concatenate(ww_keys), np.concatenate(ww_ids)

    def save(name, arr):
        np.save(out / f"{name}.npy", np.ascontiguousarray(arr))

    order = np.argsort(char_keys, kind="stable")
    char_keys = char_keys[order]
    if np.any(char_keys[1:] == char_keys[:-1]):
        raise ValueError("duplicate character feature keys")
    save("char_keys", char_keys)
    save("char_fid", char_ids[order].astype(np.int32))
    order = np.argsort(ww_keys, kind="stable")
    ww_keys = ww_keys[order]
    if np.any(ww_keys[1:] == ww_keys[:-1]):
        raise ValueError("duplicate word-pair feature keys")
    save("ww_keys", ww_keys)
    save("ww_fid", ww_ids[order].astype(np.int32))
    # which word ids can take part in a ww feature, per (template, side): prunes lookups
    ww_ok = np.zeros((2, 2, nwx), dtype=bool)
    tpl, rest = np.divmod(ww_keys, nwx * nwx)
    ww_ok[tpl, 0, rest // nwx] = True
    ww_ok[tpl, 1, rest % nwx] = True
    save("ww_ok", ww_ok)
    save("word_fid", np.where(word_fid >= 0, word_fid, zero).astype(np.int32))
    save("trie_keys", trie.keys)
    save("trie_child", trie.child)
    save("trie_wid", trie.wid)

    tags = sorted(tag_to_idx, key=tag_to_idx.get)
    if sorted(tag_to_idx.values()) != list(range(n_tag)):
        raise ValueError("tag_to_idx does not match weights.npz")
    meta = {
        "format": FORMAT_VERSION,
        "source": str(mdir),
        "reader": reader,
        "n_tag": n_tag,
        "tags": tags,
        "n_feature": n_feature,
        "n_feature_used": int(len(char_ids) + len(ww_ids) + (word_fid >= 0).sum()),
        "n_feature_dropped": n_dropped,
        "n_words": len(words),
        "word_min": word_min,
        "word_max": word_max,
        "empty_is_word": has_empty,
        "keywords": keywords,
        "num": "".join(sorted(num)),
        "letter": "".join(sorted(letter)),
    }
    with open(out / "meta.json", "w", encoding="utf-8") as fh:  # written last: marks completion
        json.dump(meta, fh, ensure_ascii=False, indent=1)


# --------------------------------------------------------------------------------------------
# Runtime model
# --------------------------------------------------------------------------------------------


class _Model:
    """The cached model, memory-mapped. Shared by all Segmenters of a process."""

    def __init__(self, path: Path) -> None:
        with open(path / "meta.json", encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: cache format {meta.get('format')} != {FORMAT_VERSION}")

        def load(name, mmap=True):
            return np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None)

        self.path = path
        self.meta = meta
        self.weights = load("weights")
        self.zero = len(self.weights) - 1
        self.char_keys, self.char_fid = load("char_keys"), load("char_fid")
        self.ww_keys, self.ww_fid = load("ww_keys"), load("ww_fid")
        self.ww_ok = load("ww_ok", mmap=False)
        self.word_fid = load("word_fid", mmap=False)
        self.trie = _Trie(load("trie_keys"), load("trie_child"), load("trie_wid", mmap=False))
        n_tag = meta["n_tag"]
        # pkuseg: edge_score = ones((n_tag, n_tag)); edge_score[s_pre, s] += w[.. + s * n_tag + s_pre]
        self.edge = np.ones((n_tag, n_tag)) + load("edge", mmap=False).reshape(n_tag, n_tag).T
        self.is_begin = np.array(["B" in t for t in meta["tags"]])
        self.word_min, self.word_max = meta["word_min"], meta["word_max"]
        self.nwx = meta["n_words"] + 2
        self.out_of_range = _EMPTY if meta["empty_is_word"] else _NOWORD
        self.first_fid = 0  # pkuseg always adds feature 0 ("$$")
        # character normalisation: keyword_rename, then **Num / **Letter
        # (keyword_rename comes first: "." is a keyword *and* a number character; it becomes "&")
        norm = np.arange(_NC, dtype=np.int64)
        norm[[ord(c) for c in meta["num"]]] = _NUM
        norm[[ord(c) for c in meta["letter"]]] = _LETTER
        norm[[ord(c) for c in meta["keywords"]]] = norm[ord("&")]
        self.norm = norm
        with open(_dict_path(), "rb") as fh:
            # pkuseg's Postprocesser(None, [dicts/default.pkl]): used whenever user_dict is not None
            self.dict_words = frozenset(pickle.load(fh).strip().split("\n"))
        self.dict_max_len = max(map(len, self.dict_words))

    # -- feature lookup -------------------------------------------------------------------

    def _char_fids(self, template: int, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        key = template * _NC + a
        key = key * _NC + (0 if b is None else b)
        idx = np.searchsorted(self.char_keys, key)
        idx[idx >= len(self.char_keys)] = 0
        return np.where(self.char_keys[idx] == key, self.char_fid[idx], self.zero)

    def node_scores(self, cp: np.ndarray, seg_off: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
        """pkuseg's ``getLogYY`` node scores for the concatenated segments' code points."""
        n = len(cp)
        lo = np.repeat(seg_off, seg_len)
        hi = lo + np.repeat(seg_len, seg_len)
        j = np.arange(n)
        c = self.norm[cp]
        pad = np.zeros(2, dtype=np.int64)
        cpad = np.concatenate((pad, c, pad))
        c_m1, c_m2, c_p1, c_p2 = cpad[1:-3], cpad[:-4], cpad[3:-1], cpad[4:]
        has_m1, has_m2, has_p1, has_p2 = j - 1 >= lo, j - 2 >= lo, j + 1 < hi, j + 2 < hi

        # Unary lookups depend on the character only: look up each distinct one once.
        uniq, inv = np.unique(c, return_inverse=True)

        def unary(t):
            return self._char_fids(t, uniq, None)[inv]

        zero = self.zero
        dense = [
            unary(0),  # c.
            np.where(has_m1, np.roll(unary(1), 1), zero),  # c-1.
            np.where(has_m1, self._char_fids(5, c_m1, c), zero),  # c-1c.
            np.where(has_p1, np.roll(unary(2), -1), zero),  # c1.
            np.where(has_p1, self._char_fids(6, c, c_p1), zero),  # cc1.
            np.where(has_m2, np.roll(unary(3), 2), zero),  # c-2.
            np.where(has_m2, self._char_fids(7, c_m2, c_m1), zero),  # c-2c-1.
            np.where(has_p2, np.roll(unary(4), -2), zero),  # c2.
        ]

        # Word slices: wid[l][p] = word id of nodes p..p+l-1 (only meaningful when in range).
        lengths = range(self.word_max, self.word_min - 1, -1)  # pkuseg's order: 6 .. 2
        wid = self._word_ids(c, hi, self.word_min, self.word_max)
        oor = self.out_of_range

        def slice_ids(start, length):
            inr = (start >= lo) & (start + length <= hi)
            return np.where(inr, wid[length][np.clip(start, 0, max(n - 1, 0))], oor)

        pre_in = np.stack([slice_ids(j - ln + 1, ln) for ln in lengths], 1)  # ends at j
        post_in = np.stack([slice_ids(j, ln) for ln in lengths], 1)  # starts at j
        pre_ex = np.stack([slice_ids(j - ln, ln) for ln in lengths], 1)  # ends at j - 1
        post_ex = np.stack([slice_ids(j + 1, ln) for ln in lengths], 1)  # starts at j + 1

        w = self.weights
        scores = np.empty((n, w.shape[1]))
        scores[:] = w[self.first_fid]  # 0.0 + w[0] == w[0]
        for fids in dense:
            scores += w[fids]
        # pkuseg only looks up w-1./w1. when the slice is a unigram word; word_fid[..][NOWORD]
        # is the zero row anyway. Sparse: most slices are not words.
        for t, ids in ((0, pre_in), (1, post_in)):
            for k in range(ids.shape[1]):
                fids = self.word_fid[t][ids[:, k]]
                rows = np.flatnonzero(fids != zero)
                scores[rows] += w[fids[rows]]
        for t, pre, post in ((0, pre_ex, post_in), (1, pre_in, post_ex)):
            self._add_pair_features(scores, t, pre, post)
        return scores

    def _word_ids(self, c, hi, word_min, word_max):
        n = len(c)
        out = {ln: np.full(n, _NOWORD, dtype=np.int64) for ln in range(word_min, word_max + 1)}
        sel = np.arange(n)
        state = np.zeros(n, dtype=np.int64)
        for depth in range(word_max):
            pos = sel + depth
            inr = pos < hi[sel]
            sel, state, pos = sel[inr], state[inr], pos[inr]
            if not len(sel):
                break
            nxt = self.trie.step(state, c[pos])
            ok = nxt >= 0
            sel, state = sel[ok], nxt[ok]
            if depth + 1 >= word_min:
                out[depth + 1][sel] = self.trie.wid[state]
        return out

    def _add_pair_features(self, scores, t, pre, post):
        """ww.l / ww.r features: all (pre, post) slice pairs, in pkuseg's nested-loop order."""
        ok_pre = self.ww_ok[t, 0][pre]
        ok_post = self.ww_ok[t, 1][post]
        node, a, b = np.nonzero(ok_pre[:, :, None] & ok_post[:, None, :])  # (node, a, b) order
        if not len(node):
            return
        nwx = self.nwx
        key = (t * nwx + pre[node, a]) * nwx + post[node, b]
        idx = np.searchsorted(self.ww_keys, key)
        idx[idx >= len(self.ww_keys)] = 0
        hit = self.ww_keys[idx] == key
        node, fids = node[hit], self.ww_fid[idx[hit]]
        if not len(node):
            return
        # several features per node: add them in order, one "rank" at a time
        first = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
        rank = np.arange(len(node)) - np.repeat(first, np.diff(np.r_[first, len(node)]))
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            scores[node[sel]] += self.weights[fids[sel]]

    # -- decoding ---------------------------------------------------------------------------

    def viterbi(self, scores: np.ndarray, seg_off: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
        """pkuseg's ``run_viterbi`` for every segment at once (same arithmetic, same tie-breaks)."""
        n, n_tag = scores.shape
        edge = self.edge
        order = np.argsort(-seg_len, kind="stable")
        lens = seg_len[order]
        starts = seg_off[order]
        last = starts + lens - 1
        active = np.searchsorted(-lens, -np.arange(int(lens[0]) + 1), side="left")  # len > r
        best = scores.copy()  # max_score; row n-1 of each segment = its node scores
        back = np.zeros((n, n_tag), dtype=np.int8)
        rev = slice(None, None, -1)
        for r in range(1, int(lens[0])):
            i = last[: active[r]] - r
            sc = (best[i + 1][:, None, :] + scores[i][:, :, None]) + edge  # [node, y, y_pre]
            # pkuseg keeps the *last* y_pre reaching the maximum (``sc >= max_score``)
            arg = n_tag - 1 - sc[:, :, rev].argmax(axis=2)
            best[i] = sc.max(axis=2)
            back[i] = arg
        tags = np.empty(n, dtype=np.int8)
        cur = best[starts].argmax(axis=1)  # first maximum (``if ma < sc``)
        tags[starts] = cur
        for r in range(1, int(lens[0])):
            k = active[r]
            i = starts[:k] + r
            cur = back[i - 1, cur[:k]]
            tags[i] = cur
        return tags

    def post_process(self, text: str, bounds: list[int]) -> list[int]:
        """pkuseg ``Postprocesser.post_process(sent, check_seperated=True)`` on token bounds.

        Within one pass (window of m tokens, m = 7..2), pkuseg merges left to right and resumes
        after the merged token, i.e. it merges a greedy left-to-right set of non-overlapping
        windows of the pass's input. A window merges when its text is a dictionary word and not
        all of its tokens are.
        """
        words = self.dict_words
        max_len = self.dict_max_len
        for m in range(7, 1, -1):
            n = len(bounds) - 1
            if n < m:
                continue
            new = [bounds[0]]
            i = 0
            while i <= n - m:
                a, b = bounds[i], bounds[i + m]
                if b - a <= max_len and text[a:b] in words:
                    parts = (text[bounds[k] : bounds[k + 1]] for k in range(i, i + m))
                    if not all(p in words for p in parts):
                        new.append(b)
                        i += m
                        continue
                new.append(bounds[i + 1])
                i += 1
            new.extend(bounds[i + 1 :])
            bounds = new
        return bounds


@functools.lru_cache(maxsize=4)
def _load_model(path: Path) -> _Model:
    return _Model(path)


def _get_model() -> _Model:
    return _load_model(_ensure_cache())


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class _TrieNode:
    __slots__ = ("children", "isword")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.isword = False


class Segmenter:
    """pkuseg-identical segmentation (``pkuseg.pkuseg(user_dict=user_words).cut``)."""

    def __init__(self, user_words: Iterable[str] = ()) -> None:
        self._model = _get_model()
        self._root = _TrieNode()
        self.add_words(user_words)

    def add_words(self, words: Iterable[str]) -> None:
        """Extend the user dictionary: these words are always kept as single tokens."""
        if isinstance(words, str):
            words = [words]
        for word in words:
            node = self._root
            for ch in word.strip():  # pkuseg's Preprocesser strips each entry
                node = node.children.setdefault(ch, _TrieNode())
            node.isword = True

    def cut(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self.spans(text)]

    def spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` offsets in ``text`` of the tokens of ``cut(text)``; whitespace skipped."""
        pieces: list[tuple[int, int, bool]] = []  # (start, end, forced by the user dictionary)
        for m in _NON_SPACE.finditer(text):  # pkuseg: txt.strip().split()
            i, j = m.span()
            if self._root.children:
                pieces.extend(self._user_split(text, i, j))
            else:
                pieces.append((i, j, False))
        segs = [(a, b) for a, b, forced in pieces if not forced]
        seg_tokens = iter(self._segment(text, segs)) if segs else iter(())
        out: list[tuple[int, int]] = []
        for a, b, forced in pieces:
            if forced:
                out.append((a, b))
            else:
                bounds = next(seg_tokens)
                out.extend(zip(bounds[:-1], bounds[1:], strict=True))
        return out

    def _segment(self, text: str, segs: list[tuple[int, int]]) -> list[list[int]]:
        """Token bounds (absolute offsets) of each segment: pkuseg ``_cut`` + post-processing."""
        model = self._model
        cps = _u32(text)
        starts = np.fromiter((a for a, _ in segs), dtype=np.int64, count=len(segs))
        seg_len = np.fromiter((b - a for a, b in segs), dtype=np.int64, count=len(segs))
        seg_off = np.cumsum(seg_len) - seg_len
        total = int(seg_len.sum())
        src = np.repeat(starts - seg_off, seg_len) + np.arange(total)
        cp = cps[src].astype(np.int64)
        scores = model.node_scores(cp, seg_off, seg_len)
        tags = model.viterbi(scores, seg_off, seg_len)
        begin = model.is_begin[tags]
        begin[seg_off] = True  # the first character always starts a word
        cuts = src[np.flatnonzero(begin)]  # absolute offsets of token starts
        per_seg = np.split(cuts, np.searchsorted(cuts, starts[1:]))
        result = []
        for (a, b), c in zip(segs, per_seg, strict=True):
            bounds = c.tolist()
            bounds.append(b)
            if len(bounds) > 2:
                bounds = model.post_process(text, bounds)
            result.append(bounds)
        return result

    def _user_split(self, text: str, lo: int, hi: int):
        """pkuseg ``Preprocesser.solve`` on text[lo:hi], verbatim (including its quirk: after the
        longest match, a forced token extends to where the trie walk failed, not to the end of
        the longest word)."""
        root = self._root
        last, i = lo, lo
        while i < hi:
            if text[i] not in root.children:  # fast path, same outcome as the loop below
                i += 1
                continue
            now, j, found, last_word_end = root, i, False, -1
            while True:
                c = text[j]
                if c not in now.children:
                    found = last_word_end != -1
                    break
                now = now.children[c]
                if now.isword:
                    last_word_end = j
                j += 1
                if j == hi:
                    if last_word_end != -1:
                        j, found = last_word_end + 1, True
                    break
            if found:
                if last != i:
                    yield (last, i, False)
                yield (i, j, True)
                last = i = j
            else:
                i += 1
        if last < hi:
            yield (last, hi, False)


@functools.lru_cache(maxsize=32)
def _cached_segmenter(user_words: tuple[str, ...]) -> Segmenter:
    return Segmenter(user_words)


def load_segmenter(user_words: Iterable[str] = ()) -> Segmenter:
    """A Segmenter for these user words, cached per process (the model itself is always shared).

    The returned instance is shared: ``add_words`` on it affects later calls with the same words.
    """
    return _cached_segmenter(tuple(user_words))


# --------------------------------------------------------------------------------------------
# spaCy integration
# --------------------------------------------------------------------------------------------

if __name__ != "__main__":

    class PkusegTokenizer:
        """spaCy tokenizer: pkuseg tokens, with ``token.idx`` = character offset in the input.

        Whitespace follows spaCy's convention (as ``spacy.util.get_words_and_spaces``): one
        ``" "`` after a token becomes ``token.whitespace_``, any other whitespace becomes its own
        (``is_space``) token, so ``doc.text == text``.
        """

        def __init__(self, vocab: Vocab, user_words: Iterable[str] = ()) -> None:
            self.vocab = vocab
            self.user_words = list(user_words)
            self.segmenter = load_segmenter(self.user_words)

        def __call__(self, text: str) -> Doc:
            words, spaces = [], []
            pos, n = 0, len(text)
            for a, b in self.segmenter.spans(text):
                if a > pos:
                    words.append(text[pos:a])
                    spaces.append(False)
                words.append(text[a:b])
                spaces.append(False)
                pos = b
                if pos < n and text[pos] == " ":
                    spaces[-1] = True
                    pos += 1
            if pos < n:
                words.append(text[pos:])
                spaces.append(False)
            return Doc(self.vocab, words=words, spaces=spaces)

        def pipe(self, texts: Iterable[str], batch_size: int = 1000):
            for text in texts:
                yield self(text)

        # serialisation (nlp.to_disk / to_bytes call these): only the user words
        def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
            return json.dumps({"user_words": self.user_words}, ensure_ascii=False).encode()

        def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> PkusegTokenizer:
            self.user_words = list(json.loads(data)["user_words"])
            self.segmenter = load_segmenter(self.user_words)
            return self

        def to_disk(self, path, *, exclude: Iterable[str] = ()) -> None:
            path = Path(path)
            path.mkdir(parents=True, exist_ok=True)
            (path / "pkuseg_tokenizer.json").write_bytes(self.to_bytes())

        def from_disk(self, path, *, exclude: Iterable[str] = ()) -> PkusegTokenizer:
            return self.from_bytes((Path(path) / "pkuseg_tokenizer.json").read_bytes())

    @spacy.registry.tokenizers("jiceng.pkuseg_tokenizer.v1")
    def create_pkuseg_tokenizer(user_words: Sequence[str] = ()):
        def make(nlp: Language) -> PkusegTokenizer:
            return PkusegTokenizer(nlp.vocab, user_words)

        return make

    def make_nlp(user_words: Iterable[str] = ()) -> Language:
        """``spacy.blank("zh")`` with the pkuseg tokenizer (no model download)."""
        config = {
            "nlp": {
                "tokenizer": {
                    "@tokenizers": "jiceng.pkuseg_tokenizer.v1",
                    "user_words": list(user_words),
                }
            }
        }
        return spacy.blank("zh", config=config)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--build-cache":
        build_cache(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        print(f"usage: {sys.argv[0]} --build-cache MODEL_DIR OUT_DIR", file=sys.stderr)
        sys.exit(2)
