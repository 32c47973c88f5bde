"""What start-up reads from a disk store, saved beside it for the next start.

The server reads a name index, counts and class/property partitions from every graph it
serves.  On a 1M-triple RocksDB store those queries take seconds while opening the store
takes a fraction of one; the store directory's content changes only when it is rebuilt
(a new directory) or updated (the summary is deleted first), so a restart reads the
summary back instead of querying.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any

log = logging.getLogger("jiceng.server")
_PREFIX = "jiceng-summary-"


def path_for(db: Path) -> Path:
    """The summary file of the store directory ``db`` (beside it, not inside RocksDB's)."""
    return db.parent / f"{_PREFIX}{db.name}.pickle"


def key_for(dump_sha256: str, *queries: str) -> str:
    """What a saved summary must match: the dump and the text of the start-up queries."""
    h = hashlib.sha256(dump_sha256.encode())
    for q in queries:
        h.update(b"\0" + q.encode())
    return h.hexdigest()


def load(path: Path, key: str) -> Any | None:
    """The saved summary when its key matches, else None (absent, stale or unreadable)."""
    try:
        with path.open("rb") as f:
            saved_key, value = pickle.load(f)  # our own file, beside our own store
    except FileNotFoundError:
        return None
    except Exception as exc:  # truncated or from another version: recompute it
        log.warning("%s: unreadable, recomputing it (%s)", path, exc)
        return None
    return value if saved_key == key else None


def save(path: Path, key: str, value: Any) -> None:
    """Write atomically; a failure only costs the next start its queries."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            pickle.dump((key, value), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("%s: cannot save the start-up summary: %s", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()


def forget(db: Path) -> None:
    """Before the store ``db`` is written: its summary no longer describes it."""
    with contextlib.suppress(FileNotFoundError):
        path_for(db).unlink()


def prune(store_dir: Path, keep: Path) -> None:
    """Delete summaries of store directories other than ``keep``."""
    for path in Path(store_dir).glob(_PREFIX + "*"):
        if path.name != path_for(Path(keep)).name:
            with contextlib.suppress(OSError):
                path.unlink()
