"""A general Chinese lexicon with parts of speech: jieba's bundled ``dict.txt``.

The recogniser uses it to tell a name from an ordinary word ("走出" is a verb, so
"走出农村" is not a village).  jieba ships the file inside its package, so nothing is
downloaded; we read the file directly and never import jieba's segmenter.
"""

from __future__ import annotations

import importlib.util
import marshal
from functools import lru_cache
from pathlib import Path

from kg.cache import cache_root, source_key
from kg.files import write_atomic

# Parts of speech that can be part of a proper name (ICTCLAS tags as used by jieba).
NAME_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nz", "nt", "j", "n", "s", "b", "ng"})
PROPER_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nz", "nt", "j"})


def lexicon_path() -> Path:
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise RuntimeError("the jieba package (its dictionary) is not installed")
    return Path(spec.origin).resolve().parent / "dict.txt"


@lru_cache(maxsize=1)
def load_lexicon() -> dict[str, tuple[int, str]]:
    """word -> (frequency, part of speech); parsed once, then read from a marshal cache."""
    source = lexicon_path()
    cached = cache_root() / f"lexicon-{source_key(source)}.marshal"
    try:
        return marshal.loads(cached.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    out: dict[str, tuple[int, str]] = {}
    with open(source, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3:
                out[parts[0]] = (int(parts[1]), parts[2])
    try:
        write_atomic(cached, marshal.dumps(out))
    except OSError:
        pass  # a read-only home: parse each time
    return out


def tag(word: str) -> str | None:
    entry = load_lexicon().get(word)
    return entry[1] if entry else None


def freq(word: str) -> int:
    entry = load_lexicon().get(word)
    return entry[0] if entry else 0
