"""Chinese word segmentation: pkuseg's ``default`` model, loaded from a compact memory-mapped cache.

``Segmenter().cut(text)`` returns exactly ``pkuseg.pkuseg(user_dict=words).cut(text)``, but loads in
milliseconds (once the cache exists) instead of 2.5-5 s, and takes ~110 MB instead of ~800 MB.

Why: pkuseg unpickles ``features.pkl`` into a dict of 2.6 M feature strings (plus a 1.1 M-entry
bigram list it never uses at inference), and ``dicts/default.pkl`` into a set of 390 k words.

Cache (built once per pkuseg install by a child process, ~2 s, ~320 MB peak in that child;
``python -m kg.segment`` builds it ahead of time, e.g. in an install step):

* ``features.pkl`` is not unpickled: its byte stream is walked (the bigram list is skipped) and the
  feature strings are parsed in bulk with numpy (``pickle.load`` is the fallback if the layout is
  not the expected one). Each feature becomes an integer key: character templates (``c.X``,
  ``c-1c.X.Y`` ...) -> ``(template, code point, code point)`` with ``**Num``/``**Letter`` as two
  pseudo code points; word templates (``w-1.W``, ``ww.l.A*B`` ...) -> ``(template, word id...)``
  where word ids come from a trie (sorted edge-key array) of the unigram words text can produce.
  Keys are stored sorted, for ``np.searchsorted``.
* Weights: pkuseg's are all multiples of 1e-4, so they are stored as int32 ``k`` with ``k / 1e4``
  bit-identical to the float64 originals (verified; float64 otherwise).
* ``dicts/default.pkl`` (post-processing) becomes a table of 64-bit polynomial hashes of the words'
  code points; matches are confirmed by comparing code points, so lookups are exact.
* Everything is ``.npy``, opened with ``mmap_mode="r"``. Location: ``$JICENG_CACHE_DIR`` or
  ``$XDG_CACHE_HOME/jiceng`` or ``~/.cache/jiceng``, then ``pkuseg-default-<size>-<mtime>-v<N>/``;
  built in a temporary directory and renamed into place under a file lock (concurrent first
  runs are safe; the loser waits and reuses the winner's cache).

Inference, vectorised over all segments of a ``cut`` call: normalise characters as pkuseg does,
walk the word trie, look up all feature keys, add the weights *in pkuseg's feature order* (so the
float64 scores are bit-identical), Viterbi with pkuseg's arithmetic and tie-breaks, then pkuseg's
post-processing (merge adjacent tokens whose concatenation is a ``default.pkl`` word unless every
part is one) and its user-dictionary pre-splitting.

Whitespace is pkuseg's: the text is split on ``str.split()`` whitespace (Unicode ``isspace``:
spaces, tabs, newlines, U+3000 ...), each run is segmented on its own, and whitespace is never part
of a token. ``spans`` gives ``(start, end)`` offsets into the original text; the spaCy tokenizer
turns the whitespace between tokens back into ``Doc`` spaces or whitespace tokens, so that
``doc.text == text`` and ``token.idx`` is the character offset.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

if __name__ != "__main__":
    # The cache-builder child process runs this file as a script and has no use for spaCy.
    import spacy
    from spacy.language import Language
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

try:
    from kg.cache import cache_root
except ImportError:  # the cache-building child runs this file as a bare script: no need
    cache_root = None  # type: ignore[assignment]

__all__ = [
    "Segmenter",
    "PkusegTokenizer",
    "cache_root",
    "load_segmenter",
    "make_nlp",
    "model_dir",
]

FORMAT_VERSION = 3  # 3: chunks added by two threads no longer misalign keys and ids

# Node code points: Unicode code points, plus two pseudo code points for pkuseg's classes.
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


def _cache_name(mdir: Path, dict_path: Path) -> str:
    stats = [os.stat(p) for p in (mdir / "features.pkl", mdir / "weights.npz", dict_path)]
    size = sum(s.st_size for s in stats)
    mtime = max(int(s.st_mtime) for s in stats)
    return f"pkuseg-default-{size}-{mtime}-v{FORMAT_VERSION}"


def _ensure_cache() -> Path:
    """Return the cache directory for pkuseg's default model, building it (once, atomically)."""
    mdir, dict_path, root = model_dir(), _dict_path(), cache_root()
    final = root / _cache_name(mdir, dict_path)
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
            _build_cache_in_child(mdir, dict_path, tmp)
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


def _build_cache_in_child(mdir: Path, dict_path: Path, out: Path) -> None:
    """Build in a separate process (this file run as a script, without spaCy): its transient
    ~300 MB never count against the caller's RSS."""
    if not sys.executable:
        build_cache(mdir, dict_path, out)
        return
    script = os.path.realpath(__file__)
    cmd = [sys.executable, "-P", script, "--build-cache", str(mdir), str(dict_path), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"building the pkuseg model cache failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}"
        )


# --------------------------------------------------------------------------------------------
# Cache builder
# --------------------------------------------------------------------------------------------

_SEP = "\x00"  # separator when decoding feature keys in bulk (no feature contains NUL)
_HASH_BASE = 0x9E3779B97F4A7C15  # odd: invertible mod 2**64
_BATCH_CHARS = 1 << 16  # characters segmented per vectorised batch


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
    ``{"unigram": [...], "bigram": [...], "feature_to_idx": {key: 0, ...}, "tag_to_idx": {...}}``
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
    # pkuseg saves sorted(set(...)): strictly increasing strings (this also rules out memo
    # references inside the slice, which would have resolved to the wrong objects)
    if not (
        isinstance(unigram, list)
        and all(isinstance(w, str) for w in unigram)
        and all(a < b for a, b in zip(unigram, unigram[1:], strict=False))
    ):
        raise _FastPathFailed("unigram is not a sorted list of distinct str")
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
    if not (isinstance(tag_to_idx, dict) and all(t[:1] in ("B", "I") for t in tag_to_idx)):
        raise _FastPathFailed("tag_to_idx is not a dict of pkuseg tags")

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
    step = 1 << 17
    for lo in range(0, n_feature, step):
        st = starts[lo : lo + step].astype(np.int64)
        intpos = st + 3 + arr[st + 1]
        ops = arr[intpos]
        b1, b2, b3, b4 = (
            arr[np.minimum(intpos + i, len(arr) - 1)].astype(np.int64) for i in range(1, 5)
        )
        vals = np.where(ops == 0x4B, b1, np.where(ops == 0x4D, b1 | b2 << 8, 0))
        vals = np.where(ops == 0x4A, b1 | b2 << 8 | b3 << 16 | b4 << 24, vals)
        if not (
            np.all(arr[intpos - 1] == 0x94) and np.array_equal(vals, np.arange(lo, lo + len(st)))
        ):
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


def _find(keys: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each of ``q`` in the sorted array ``keys``, and whether it is there.
    The queries are sorted first: on big (memory-mapped) tables that is ~5x faster."""
    if not len(keys):
        return np.zeros(len(q), dtype=np.intp), np.zeros(len(q), dtype=bool)
    if len(q) > 64:
        order = np.argsort(q)
        idx = np.empty(len(q), dtype=np.intp)
        idx[order] = np.searchsorted(keys, q[order])
    else:
        idx = np.searchsorted(keys, q)
    idx[idx == len(keys)] = 0
    return idx, keys[idx] == q


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
    """Word trie over node code points: sorted ``parent * NC + cp`` edge keys, child ids."""

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
        idx, hit = _find(self.keys, state.astype(np.int64) * _NC + cp)
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


def _write_weights(npz_path: Path, out: Path) -> tuple[int, int, np.ndarray, float | None]:
    """weights.npy = pkuseg's node weights (row = feature id) plus an all-zero row (id n_feature)
    standing for "feature absent"; edge.npy = the tag-transition weights.

    pkuseg's weights are all multiples of 1e-4 (the model was saved with 4 decimals): then they
    are stored as int32 ``k`` with ``k / 10000.0`` bit-identical to the original float64 (checked
    here for every weight), which halves the file and the RSS. Otherwise float64.
    ``weights.npz`` is an uncompressed zip of .npy files, so the data is streamed straight from the
    archive. Returns (n_tag, n_feature, rows-not-all-zero, scale or None).
    """
    with np.load(npz_path) as npz:
        n_tag, n_feature = (int(x) for x in npz["sizes"])
    n_node = n_tag * n_feature
    step = n_tag << 18
    with open(npz_path, "rb") as src:
        data_off = _npz_member_offset(src, "w.npy", (n_tag * (n_feature + n_tag),))
    if data_off is not None:

        def read(lo, hi):
            return np.fromfile(npz_path, dtype="<f8", count=hi - lo, offset=data_off + 8 * lo)

    else:  # compressed or unusual archive: go through numpy
        with np.load(npz_path) as npz:
            w_all = np.asarray(npz["w"], dtype="<f8")
        if w_all.shape != (n_tag * (n_feature + n_tag),):
            raise ValueError("weights.npz: inconsistent sizes")

        def read(lo, hi):
            return w_all[lo:hi]

    np.save(out / "edge.npy", read(n_node, n_node + n_tag * n_tag))
    nonzero = np.empty(n_feature, dtype=bool)
    for scale, dtype in ((10000.0, "<i4"), (None, "<f8")):
        header = {"descr": dtype, "fortran_order": False, "shape": (n_feature + 1, n_tag)}
        with open(out / "weights.npy", "wb") as dst:
            np.lib.format.write_array_header_1_0(dst, header)
            for lo in range(0, n_node, step):
                w = read(lo, min(lo + step, n_node))
                nonzero[lo // n_tag : (lo + len(w)) // n_tag] = (w != 0).reshape(-1, n_tag).any(1)
                if scale is not None:
                    k = np.rint(w * scale)
                    if not (np.abs(k).max(initial=0) < 2**31 and np.array_equal(k / scale, w)):
                        break  # not on the grid: store float64
                    w = k
                dst.write(w.astype(dtype).tobytes())
            else:
                dst.write(np.zeros(n_tag, dtype=dtype).tobytes())
                return n_tag, n_feature, nonzero, scale
    raise AssertionError("unreachable")


def _poly_hash_prefix(codes: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums P (len n+1) and inverse powers (len n+1) for polynomial hashes mod 2**64:
    hash(codes[a:b]) = (P[b] - P[a]) * inv[a] = sum(codes[a + t] * base**t)."""
    n = len(codes)
    powers = np.empty(n, dtype=np.uint64)
    if n:
        powers[0] = 1
        powers[1:] = base
        np.cumprod(powers, out=powers)
    inv = np.empty(n + 1, dtype=np.uint64)
    inv[0] = 1
    inv[1:] = pow(base, -1, 2**64)
    np.cumprod(inv, out=inv)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(codes.astype(np.uint64) * powers, out=prefix[1:])
    return prefix, inv


def _build_dict(path: Path, out: Path) -> dict:
    """pkuseg's post-processing word list (dicts/default.pkl) as a hash table over code points."""
    with open(path, "rb") as fh:
        words = list(dict.fromkeys(pickle.load(fh).strip().split("\n")))  # unique, in order
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    starts = np.cumsum(lens + 1) - (lens + 1)
    codes = _u32(_SEP.join(words) + _SEP)
    for base in range(_HASH_BASE, _HASH_BASE + 64, 2):  # odd bases; the first one will do
        prefix, inv = _poly_hash_prefix(codes, base)
        hashes = (prefix[starts + lens] - prefix[starts]) * inv[starts]
        order = np.argsort(hashes, kind="stable")
        hashes = hashes[order]
        if not np.any(hashes[1:] == hashes[:-1]):
            break
    else:
        raise ValueError("could not find a collision-free hash base for the dictionary")
    np.save(out / "dict_hash.npy", hashes)
    np.save(out / "dict_start.npy", starts[order].astype(np.int32))
    np.save(out / "dict_len.npy", lens[order].astype(np.int32))
    np.save(out / "dict_codes.npy", codes)
    return {"dict_base": base, "dict_words": len(words), "dict_max_len": int(lens.max())}


def _npz_member_offset(fh, name: str, shape: tuple[int, ...]) -> int | None:
    """File offset of the raw data of a stored (uncompressed) little-endian float64 .npy member."""
    import zipfile

    try:
        with zipfile.ZipFile(fh) as zf:
            info = zf.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            arr_shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            arr_shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
        if arr_shape != shape or fortran or dtype != np.dtype("<f8"):
            return None
        return fh.tell()
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None


class _FeatureTables:
    """Accumulates feature keys -> ids while the feature strings are parsed, chunk by chunk."""

    def __init__(self, trie: _Trie, n_words: int, word_max: int, bad_chars: set[str]) -> None:
        self.trie, self.word_max = trie, word_max
        self.nwx = n_words + 2
        self.bad_cp = np.zeros(_NC, dtype=bool)
        self.bad_cp[[ord(ch) for ch in bad_chars]] = True
        # (keys, ids) appended as one pair: two threads add chunks at once, and two separate
        # appends could interleave and misalign keys with ids.
        self.char_pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.word_fid = np.full((2, self.nwx), -1, dtype=np.int64)
        self.ww_pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.dropped: list[int] = []  # counts (list.append is thread-safe)

    def add(self, ids: np.ndarray, text: str, keep: np.ndarray) -> None:
        """``text``: the feature strings of ``ids``, each followed by ``_SEP``; ``keep``: which
        are worth storing (not all-zero)."""
        self.dropped.append(int((~keep).sum()))
        codes = _u32(text)
        b = np.flatnonzero(codes == 0)
        if len(b) != len(ids):
            raise ValueError("feature key contains NUL")
        a = np.concatenate(([0], b[:-1] + 1))
        codes = np.concatenate((codes, np.zeros(16, np.uint32)))  # padding for prefix tests
        # candidates per template: keys whose first "." is where the template's first "." is
        dots = np.flatnonzero(codes == ord("."))
        first_dot = dots[np.minimum(np.searchsorted(dots, a), len(dots) - 1)] - a
        by_dot = {n: np.flatnonzero((first_dot == n) & keep) for n in range(1, 7)}
        for tpl, t in _CHAR_TEMPLATES.items():
            m = _prefix_mask(codes, a, b, tpl, by_dot[tpl.index(".")])
            self._add_char(t, tpl in _UNARY, codes, a[m] + len(tpl), b[m], ids[m])
        for tpl, t in _WORD_TEMPLATES.items():
            m = _prefix_mask(codes, a, b, tpl, by_dot[tpl.index(".")])
            wid = self.trie.lookup(codes, a[m] + len(tpl), b[m], self.word_max)
            ok = wid != _NOWORD
            self.dropped.append(int((~ok).sum()))
            self.word_fid[t, wid[ok]] = ids[m][ok]
        for tpl, t in _WW_TEMPLATES.items():
            m = _prefix_mask(codes, a, b, tpl, by_dot[tpl.index(".")])
            self._add_pair(t, codes, a[m] + len(tpl), b[m], ids[m])

    def _valid(self, cp: np.ndarray) -> np.ndarray:
        return (cp >= _NUM) | ~self.bad_cp[np.minimum(cp, _NC - 1)]

    def _add_char(self, t, unary, codes, r, e, ids):
        """``c.X`` / ``c-1c.X.Y`` ...: X, Y one character or **Num / **Letter."""
        cp1, l1 = _node_token(codes, r, e)
        ok = (l1 > 0) & self._valid(cp1)
        if unary:
            ok &= r + l1 == e
            key = (t * _NC + cp1) * _NC
        else:
            dot = r + l1
            cp2, l2 = _node_token(codes, dot + 1, e)
            ok &= (l2 > 0) & (codes[dot] == ord(".")) & (dot + 1 + l2 == e) & self._valid(cp2)
            key = (t * _NC + cp1) * _NC + cp2
        self.dropped.append(int((~ok).sum()))
        self.char_pairs.append((key[ok], ids[ok]))

    def _add_pair(self, t, codes, r, e, ids):
        """``ww.l.A*B``: A, B unigram words (no reachable word contains "*") or "**noWord"."""
        trie, word_max = self.trie, self.word_max
        noword_pre = _prefix_mask(codes, r, e, "**noWord*")
        stars = np.flatnonzero(codes == ord("*"))
        si = np.searchsorted(stars, r)
        star = stars[np.minimum(si, len(stars) - 1)] if len(stars) else r
        has_star = (si < len(stars)) & (star < e)
        pre_end = np.where(noword_pre, r + 8, np.where(has_star, star, e))
        post_start = pre_end + 1
        pre = np.where(noword_pre, _NOWORD, trie.lookup(codes, r, pre_end, word_max))
        post = trie.lookup(codes, np.minimum(post_start, e), e, word_max)
        post_noword = _prefix_mask(codes, post_start, e, "**noWord") & (e - post_start == 8)
        post = np.where(post_noword, _NOWORD, post)
        ok = (has_star | noword_pre) & (noword_pre | (pre != _NOWORD))
        ok &= post_noword | (post != _NOWORD)
        self.dropped.append(int((~ok).sum()))
        self.ww_pairs.append(((t * self.nwx + pre[ok]) * self.nwx + post[ok], ids[ok]))


def build_cache(mdir: Path, dict_path: Path, out: Path) -> None:
    """Convert pkuseg's model in ``mdir`` (and its post-processing word list ``dict_path``) into
    the compact cache files in ``out`` (an existing, empty directory)."""
    from pkuseg.config import config
    from pkuseg.feature_extractor import FeatureExtractor

    mdir, out = Path(mdir), Path(out)
    if not (config.numLetterNorm and config.wordFeature and config.delimInFeature == "."):
        raise NotImplementedError("unsupported pkuseg feature configuration")
    word_min, word_max = int(config.wordMin), int(config.wordMax)

    with np.load(mdir / "weights.npz") as npz:
        n_tag, n_feature = (int(x) for x in npz["sizes"])
    zero = n_feature
    # Weights and dictionary in worker threads: mostly numpy, which releases the GIL, so they
    # overlap the pure-Python pickle walk below (the machine has >= 2 cores).
    with ThreadPoolExecutor(max_workers=2) as pool:
        weights_job = pool.submit(_write_weights, mdir / "weights.npz", out)
        dict_job = pool.submit(_build_dict, Path(dict_path), out)
        try:
            unigram, tag_to_idx, chunks = _read_features_fast(mdir / "features.pkl", n_feature)
            reader = "stream"
        except _FastPathFailed as exc:
            print(f"kg.segment: fast features.pkl reader not applicable ({exc})", file=sys.stderr)
            unigram, tag_to_idx, chunks = _read_features_slow(mdir / "features.pkl")
            reader = "pickle"
        _, _, nonzero, scale = weights_job.result()
        dict_meta = dict_job.result()

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

    tables = _FeatureTables(trie, len(words), word_max, bad_chars)
    with ThreadPoolExecutor(max_workers=2) as pool:  # numpy-heavy: two chunks at a time
        pending: list = []
        for ids, text in chunks:
            if len(pending) == 2:
                pending.pop(0).result()
            pending.append(pool.submit(tables.add, ids, text, nonzero[ids]))
        for job in pending:
            job.result()
    char_keys = np.concatenate([k for k, _ in tables.char_pairs])
    char_ids = np.concatenate([i for _, i in tables.char_pairs])
    ww_keys = np.concatenate([k for k, _ in tables.ww_pairs])
    ww_ids = np.concatenate([i for _, i in tables.ww_pairs])
    word_fid, n_dropped = tables.word_fid, sum(tables.dropped)

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
        "weight_scale": scale,
        "n_feature_used": int(len(char_ids) + len(ww_ids) + (word_fid >= 0).sum()),
        "n_feature_dropped": n_dropped,
        "n_words": len(words),
        "word_min": word_min,
        "word_max": word_max,
        "empty_is_word": has_empty,
        "keywords": keywords,
        "num": "".join(sorted(num)),
        "letter": "".join(sorted(letter)),
        **dict_meta,
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
            arr = np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None)
            return arr.view(np.ndarray)  # plain ndarray (np.memmap indexing is slow)

        self.path = path
        self.meta = meta
        self.weights = load("weights")
        self.scale = meta["weight_scale"]
        self.zero = len(self.weights) - 1  # the all-zero row: "no feature"
        self.char_keys, self.char_fid = load("char_keys"), load("char_fid")
        self.ww_keys, self.ww_fid = load("ww_keys"), load("ww_fid")
        self.ww_ok = load("ww_ok", mmap=False)
        self.word_fid = load("word_fid", mmap=False)
        self.trie = _Trie(load("trie_keys"), load("trie_child"), load("trie_wid", mmap=False))
        self.dict_hash, self.dict_start = load("dict_hash"), load("dict_start")
        self.dict_len, self.dict_codes = load("dict_len"), load("dict_codes")
        self.dict_base, self.dict_max_len = meta["dict_base"], meta["dict_max_len"]
        n_tag = meta["n_tag"]
        # pkuseg: edge_score = ones((T, T)); edge_score[s_pre, s] += w[backoff + s * T + s_pre]
        self.edge = np.ones((n_tag, n_tag)) + load("edge", mmap=False).reshape(n_tag, n_tag).T
        self.is_begin = np.array(["B" in t for t in meta["tags"]])
        self.word_min, self.word_max = meta["word_min"], meta["word_max"]
        self.nwx = meta["n_words"] + 2
        self.out_of_range = _EMPTY if meta["empty_is_word"] else _NOWORD
        # character normalisation: keyword_rename first ("." is a keyword *and* a number
        # character: it becomes "&"), then **Num / **Letter
        norm = np.arange(_NC, dtype=np.int64)
        norm[[ord(c) for c in meta["num"]]] = _NUM
        norm[[ord(c) for c in meta["letter"]]] = _LETTER
        norm[[ord(c) for c in meta["keywords"]]] = norm[ord("&")]
        self.norm = norm

    def _w(self, fids: np.ndarray) -> np.ndarray:
        """float64 weight rows, bit-identical to pkuseg's."""
        rows = self.weights[fids]
        return rows / self.scale if self.scale else rows

    # -- features -----------------------------------------------------------------------------

    def _char_fids(self, key: np.ndarray) -> np.ndarray:
        idx, hit = _find(self.char_keys, key)
        return np.where(hit, self.char_fid[idx], self.zero)

    def node_scores(self, cp: np.ndarray, local: np.ndarray, rem: np.ndarray) -> np.ndarray:
        """pkuseg's ``getLogYY`` node scores for the concatenated segments.

        ``cp``: code points; ``local``: index of each character in its segment; ``rem``: number of
        characters from it to the end of its segment (itself included).
        """
        n = len(cp)
        c = self.norm[cp]
        zero = self.zero
        n_slots = 8 + 2 * (self.word_max - self.word_min + 1)
        fids = np.empty((n, n_slots), dtype=np.intp)  # dense slots, in pkuseg's order

        # Unary templates (c. c-1. c1. c-2. c2.) depend on one character: look up each distinct
        # one once. Column len(uniq) of `unary` = "outside the text" (masked below anyway).
        uniq, inv = np.unique(c, return_inverse=True)
        u = len(uniq)
        unary = np.full((5, u + 1), zero, dtype=np.intp)
        unary[:, :u] = self._char_fids((np.arange(5)[:, None] * _NC + uniq) * _NC).reshape(5, u)
        inv = np.concatenate(([u, u], inv, [u, u]))
        cpad = np.concatenate(([0, 0], c, [0, 0]))
        c_m2, c_m1, c_p1 = cpad[:-4], cpad[1:-3], cpad[3:-1]
        has_m1, has_m2, has_p1, has_p2 = local >= 1, local >= 2, rem >= 2, rem >= 3
        pairs = self._char_fids(
            np.concatenate(
                (
                    (5 * _NC + c_m1) * _NC + c,
                    (6 * _NC + c) * _NC + c_p1,
                    (7 * _NC + c_m2) * _NC + c_m1,
                )
            )
        ).reshape(3, n)
        fids[:, 0] = unary[0, inv[2 : n + 2]]  # c.
        fids[:, 1] = np.where(has_m1, unary[1, inv[1 : n + 1]], zero)  # c-1.
        fids[:, 2] = np.where(has_m1, pairs[0], zero)  # c-1c.
        fids[:, 3] = np.where(has_p1, unary[2, inv[3 : n + 3]], zero)  # c1.
        fids[:, 4] = np.where(has_p1, pairs[1], zero)  # cc1.
        fids[:, 5] = np.where(has_m2, unary[3, inv[:n]], zero)  # c-2.
        fids[:, 6] = np.where(has_m2, pairs[2], zero)  # c-2c-1.
        fids[:, 7] = np.where(has_p2, unary[4, inv[4 : n + 4]], zero)  # c2.

        # Word slices around each character, of lengths word_max..word_min (pkuseg's order).
        lengths = np.arange(self.word_max, self.word_min - 1, -1)
        oor = self.out_of_range
        pad = self.word_max + 1
        words = self._words_starting(c, rem, lengths, pad)  # [k, pad + p]: c[p : p + lengths[k]]
        j = np.arange(pad, n + pad)[:, None]
        row = np.arange(len(lengths))
        loc, rm = local[:, None], rem[:, None]
        pre_in = np.where(loc >= lengths - 1, words[row, j - lengths + 1], oor)  # ends at j
        post_in = np.where(rm >= lengths, words[row, j], oor)  # starts at j
        pre_ex = np.where(loc >= lengths, words[row, j - lengths], oor)  # ends at j - 1
        post_ex = np.where(rm > lengths, words[row, j + 1], oor)  # starts at j + 1
        # w-1. / w1.: pkuseg looks them up only for unigram words (word_fid[NOWORD] = zero row)
        fids[:, 8 : 8 + len(lengths)] = self.word_fid[0][pre_in]
        fids[:, 8 + len(lengths) :] = self.word_fid[1][post_in]

        # pkuseg adds the weights feature by feature from 0.0: same order here, so the float64
        # sums are bit-identical (absent features add the all-zero row, an exact no-op).
        scores = np.empty((n, self.weights.shape[1]))
        scores[:] = self._w(0)  # feature 0 ("$$") always comes first; 0.0 + w == w
        for lo in range(0, n, 8192):
            rows = self._w(fids[lo : lo + 8192])
            part = scores[lo : lo + 8192]
            for k in range(n_slots):
                part += rows[:, k]
        for t, pre, post in ((0, pre_ex, post_in), (1, pre_in, post_ex)):
            self._add_pair_features(scores, t, pre, post)
        return scores

    def _words_starting(self, c, rem, lengths, pad) -> np.ndarray:
        """[k, pad + p] = word id of c[p : p + lengths[k]] (``_NOWORD`` if not a unigram word or
        past the end of its segment); ``out_of_range`` in the padding."""
        n = len(c)
        out = np.full((len(lengths), n + 2 * pad), self.out_of_range, dtype=np.int64)
        out[:, pad : n + pad] = _NOWORD
        row_of = {int(ln): k for k, ln in enumerate(lengths)}
        sel = np.arange(n)
        state = np.zeros(n, dtype=np.int64)
        for depth in range(int(lengths.max())):
            keep = rem[sel] > depth
            sel, state = sel[keep], state[keep]
            if not len(sel):
                break
            nxt = self.trie.step(state, c[sel + depth])
            ok = nxt >= 0
            sel, state = sel[ok], nxt[ok]
            if depth + 1 in row_of:
                out[row_of[depth + 1], sel + pad] = self.trie.wid[state]
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
        idx, hit = _find(self.ww_keys, key)
        node, fids = node[hit], self.ww_fid[idx[hit]]
        if not len(node):
            return
        # a node may have several: add them in order, one "rank" at a time
        first = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
        rank = np.arange(len(node)) - np.repeat(first, np.diff(np.r_[first, len(node)]))
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            scores[node[sel]] += self._w(fids[sel])

    # -- decoding -------------------------------------------------------------------------------

    def viterbi(self, scores: np.ndarray, seg_off: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
        """pkuseg's ``run_viterbi`` on every segment: same float64 arithmetic
        (``max_score[i+1, y_pre] + node_score[i, y] + edge_score[y, y_pre]``, right to left) and
        the same tie-breaks (last ``y_pre`` reaching the max; first tag at position 0).

        Numpy steps cost ~8 us per position of the *longest* segment, for all segments at once;
        plain Python ~3 us per character: use whichever is cheaper."""
        if len(scores) <= 3 * int(seg_len.max()):
            return self._viterbi_python(scores, seg_off, seg_len)
        return self._viterbi_numpy(scores, seg_off, seg_len)

    def _viterbi_python(self, scores, seg_off, seg_len) -> np.ndarray:
        edge = self.edge.tolist()
        tags: list[int] = []
        for off, ln in zip(seg_off.tolist(), seg_len.tolist(), strict=True):
            tags += _run_viterbi(scores[off : off + ln].tolist(), edge)
        return np.array(tags, dtype=np.intp)

    def _viterbi_numpy(self, scores, seg_off, seg_len) -> np.ndarray:
        n, n_tag = scores.shape
        order = np.argsort(-seg_len, kind="stable")
        lens, starts = seg_len[order], seg_off[order]
        last = starts + lens - 1
        max_len = int(lens[0])
        active = np.searchsorted(-lens, -np.arange(max_len), side="left")  # segments with len > r
        # Step-major layout: step r (r-th character from the end) of the active segments is the
        # contiguous block [at[r], at[r] + active[r]); step r - 1 of the same segments is the
        # first active[r] rows of the previous block.
        at = np.concatenate(([0], np.cumsum(active)))
        seq = np.arange(n) - np.repeat(at[:-1], active)  # index of the segment within the step
        step = np.repeat(np.arange(max_len), active)
        pos = last[seq] - step  # original position of each step-major row
        sc_sm = scores[pos]
        best = np.empty_like(sc_sm)
        back = np.zeros((n, n_tag), dtype=np.intp)
        best[: active[0]] = sc_sm[: active[0]]
        tmp = np.empty((active[0], n_tag, n_tag))
        edge, rev = self.edge, slice(None, None, -1)
        for r in range(1, max_len):
            k = active[r]
            cur, prev = slice(at[r], at[r] + k), slice(at[r - 1], at[r - 1] + k)
            t = tmp[:k]
            np.add(best[prev, None, :], sc_sm[cur, :, None], out=t)  # [seg, y, y_pre]
            t += edge
            np.maximum.reduce(t, axis=2, out=best[cur])
            t[:, :, rev].argmax(axis=2, out=back[cur])  # = n_tag - 1 - last argmax
        back_pos = np.empty_like(back)
        back_pos[pos] = n_tag - 1 - back  # back_pos[i, y]: best y_pre at i + 1, original order
        first_tag = best[at[lens - 1] + np.arange(len(lens))].argmax(axis=1)  # first maximum
        return self._backtrace(back_pos, first_tag, starts, seg_off, seg_len)

    @staticmethod
    def _backtrace(back, first_tag, starts, seg_off, seg_len):
        """tags[start] = first_tag; tags[i] = back[i - 1, tags[i - 1]]: a prefix composition of
        the maps y -> back[i - 1, y], in log2(longest segment) vectorised rounds."""
        n, n_tag = back.shape
        comp = np.empty((n, n_tag), dtype=np.intp)  # comp[i]: tag at segment start -> tag at i
        comp[1:] = back[:-1]
        comp[seg_off] = np.arange(n_tag)
        seg_start = np.repeat(seg_off, seg_len)
        dist = np.arange(n) - seg_start
        span, longest = 1, int(seg_len.max())
        while span < longest:
            i = np.flatnonzero(dist >= span)
            comp[i] = np.take_along_axis(comp[i], comp[i - span], axis=1)
            span *= 2
        tag0 = np.empty(n, dtype=np.intp)
        tag0[starts] = first_tag
        return comp[np.arange(n), tag0[seg_start]]

    # -- post-processing ------------------------------------------------------------------------

    def _in_dict(self, codes, prefix, inv, a, b) -> np.ndarray:
        """Is codes[a:b] a word of dicts/default.pkl? Exact (hash lookup, then compared)."""
        h = (prefix[b] - prefix[a]) * inv[a]
        idx, hit = _find(self.dict_hash, h)
        length = b - a
        cand = np.flatnonzero(hit & (self.dict_len[idx] == length))
        out = np.zeros(len(a), dtype=bool)
        if len(cand):
            ln = length[cand]
            off = np.arange(int(ln.sum())) - np.repeat(np.cumsum(ln) - ln, ln)
            text_pos = np.repeat(a[cand], ln) + off
            dict_pos = np.repeat(self.dict_start[idx[cand]], ln) + off
            differs = codes[text_pos] != self.dict_codes[dict_pos]
            bad = np.bincount(np.repeat(np.arange(len(cand)), ln)[differs], minlength=len(cand))
            out[cand[bad == 0]] = True
        return out

    def post_process(self, codes: np.ndarray, starts: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """pkuseg ``Postprocesser.post_process(sent, check_seperated=True)``, all segments at once.

        ``codes``: the segments' concatenated (raw) code points; ``starts``: token starts in it;
        ``seg``: segment number of each token. Returns the new token starts.

        For m = 7..2, pkuseg scans the tokens left to right and merges a window of m tokens when
        its text is a dictionary word and not all its tokens are, resuming after the merged token:
        a greedy left-to-right choice of non-overlapping windows among those of the pass's input.
        """
        prefix, inv = _poly_hash_prefix(codes, self.dict_base)
        n = len(codes)
        ends = np.append(starts[1:], n)
        in_dict = self._in_dict(codes, prefix, inv, starts, ends)
        for m in range(7, 1, -1):
            t = len(starts)
            if t < m:
                continue
            ends = np.append(starts[1:], n)
            ws = np.arange(t - m + 1)
            a, b = starts[ws], ends[ws + m - 1]
            cand = np.flatnonzero((seg[ws] == seg[ws + m - 1]) & (b - a <= self.dict_max_len))
            hit = cand[self._in_dict(codes, prefix, inv, a[cand], b[cand])]
            if not len(hit):
                continue
            n_in = np.concatenate(([0], np.cumsum(in_dict)))
            hit = hit[n_in[hit + m] - n_in[hit] < m]  # not all parts are words
            merged, free = [], -1
            for s in hit.tolist():
                if s >= free:
                    merged.append(s)
                    free = s + m
            if merged:
                keep = np.ones(t, dtype=bool)
                keep[(np.array(merged)[:, None] + np.arange(1, m)).ravel()] = False
                in_dict[merged] = True
                starts, seg, in_dict = starts[keep], seg[keep], in_dict[keep]
        return starts


def _run_viterbi(node: list[list[float]], edge: list[list[float]]) -> list[int]:
    """pkuseg ``inference.run_viterbi``, line for line, on Python floats (IEEE doubles)."""
    w, h = len(node), len(edge)
    best = node[w - 1]
    pre_tag: list[list[int]] = [[]] * (w - 1)
    for i in range(w - 2, -1, -1):
        row, new, pre = node[i], [0.0] * h, [0] * h
        for y in range(h):
            s, e = row[y], edge[y]
            ma, arg = best[0] + s + e[0], 0
            for y_pre in range(1, h):
                sc = best[y_pre] + s + e[y_pre]
                if sc >= ma:
                    ma, arg = sc, y_pre
            new[y], pre[y] = ma, arg
        best, pre_tag[i] = new, pre
    tag, ma = 0, best[0]
    for y in range(1, h):
        if ma < best[y]:
            tag, ma = y, best[y]
    tags = [tag]
    for i in range(w - 1):
        tag = pre_tag[i][tag]
        tags.append(tag)
    return tags


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
        """``(start, end)`` offsets in ``text`` of the tokens of ``cut(text)`` (no whitespace)."""
        pieces: list[tuple[int, int, bool]] = []  # (start, end, forced by the user dictionary)
        for m in _NON_SPACE.finditer(text):  # pkuseg: txt.strip().split()
            i, j = m.span()
            if self._root.children:
                pieces.extend(self._user_split(text, i, j))
            else:
                pieces.append((i, j, False))
        segs = [(a, b) for a, b, forced in pieces if not forced]
        if not segs:
            return [(a, b) for a, b, _ in pieces]
        tok_start, tok_end, tok_seg = self._segment(text, segs)
        starts, ends = tok_start.tolist(), tok_end.tolist()
        if len(segs) == len(pieces):
            return list(zip(starts, ends, strict=True))
        bounds = np.searchsorted(tok_seg, np.arange(len(segs) + 1)).tolist()
        out: list[tuple[int, int]] = []
        k = 0
        for a, b, forced in pieces:
            if forced:
                out.append((a, b))
            else:
                lo, hi = bounds[k], bounds[k + 1]
                out.extend(zip(starts[lo:hi], ends[lo:hi], strict=True))
                k += 1
        return out

    def spans_many(self, texts: Iterable[str]) -> list[list[tuple[int, int]]]:
        """``spans`` of several texts in one vectorised pass (faster for many short texts)."""
        texts = list(texts)
        joined = "\n".join(texts)  # segments never cross whitespace: same result as one by one
        offsets = np.cumsum([0] + [len(t) + 1 for t in texts]).tolist()
        spans = self.spans(joined)
        cut = np.searchsorted([a for a, _ in spans], offsets).tolist()
        return [
            [(a - offsets[k], b - offsets[k]) for a, b in spans[cut[k] : cut[k + 1]]]
            for k in range(len(texts))
        ]

    def cut_many(self, texts: Iterable[str]) -> list[list[str]]:
        """``cut`` of several texts in one vectorised pass."""
        texts = list(texts)
        return [
            [t[a:b] for a, b in sp] for t, sp in zip(texts, self.spans_many(texts), strict=True)
        ]

    def _segment(self, text: str, segs: list[tuple[int, int]]):
        """pkuseg ``_cut`` + post-processing of every segment. Returns the tokens' absolute
        start and end offsets and segment numbers (arrays). Segments are independent: they are
        done in batches of ~64k characters to bound the working memory (~250 bytes/char)."""
        cps = _u32(text)
        batches, size, first = [], 0, 0
        for k, (a, b) in enumerate(segs):
            size += b - a
            if size >= _BATCH_CHARS or k == len(segs) - 1:
                batches.append((first, k + 1))
                first, size = k + 1, 0
        parts = [self._segment_batch(cps, segs[lo:hi]) for lo, hi in batches]
        if len(parts) == 1:
            return parts[0]
        seg_base = [lo for lo, _ in batches]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] + base for p, base in zip(parts, seg_base, strict=True)]),
        )

    def _segment_batch(self, cps: np.ndarray, segs: list[tuple[int, int]]):
        model = self._model
        seg_start = np.array([a for a, _ in segs], dtype=np.int64)
        seg_len = np.array([b - a for a, b in segs], dtype=np.int64)
        seg_off = np.cumsum(seg_len) - seg_len
        n = int(seg_len.sum())
        seg_id = np.repeat(np.arange(len(segs)), seg_len)
        local = np.arange(n) - seg_off[seg_id]
        rem = seg_len[seg_id] - local
        src = seg_start[seg_id] + local  # offset in text of each character
        cp = cps[src].astype(np.int64)
        scores = model.node_scores(cp, local, rem)
        tags = model.viterbi(scores, seg_off, seg_len)
        begin = model.is_begin[tags]
        begin[seg_off] = True  # pkuseg: the first character always starts a word
        starts = np.flatnonzero(begin)
        starts = model.post_process(cp, starts, seg_id[starts])
        ends = np.append(starts[1:], n)
        return src[starts], src[ends - 1] + 1, seg_id[starts]

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
            return self._doc(text, self.segmenter.spans(text))

        def _doc(self, text: str, spans: list[tuple[int, int]]) -> Doc:
            words, spaces = [], []
            pos, n = 0, len(text)
            for a, b in spans:
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
            batch: list[str] = []
            for text in texts:
                batch.append(text)
                if len(batch) >= batch_size:
                    yield from self._docs(batch)
                    batch = []
            yield from self._docs(batch)

        def _docs(self, texts: list[str]):
            for text, spans in zip(texts, self.segmenter.spans_many(texts), strict=True):
                yield self._doc(text, spans)

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
    # python -m kg.segment            build the cache if missing (e.g. at install time); print it
    # ... --build-cache M D OUT       internal: what the cache-building child process runs
    if len(sys.argv) == 1:
        print(_ensure_cache())
    elif len(sys.argv) == 5 and sys.argv[1] == "--build-cache":
        build_cache(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        print(f"usage: {sys.argv[0]} [--build-cache MODEL_DIR DICT_PKL OUT_DIR]", file=sys.stderr)
        sys.exit(2)
