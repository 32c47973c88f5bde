"""Load the dump and the ontology into a pyoxigraph store (memory or on disk).

The dump goes to the default graph; the ontology (``ontology/jiceng.ttl``) goes to
the named graph ``ONTOLOGY_GRAPH`` so that the data (and ``/dump.ttl``, VoID counts)
stay exactly what the builder wrote; query the ontology with ``GRAPH <…ontology>``.

An on-disk store (``--store DIR``) records the sha256 of the dump and the ontology, and
which subdirectory holds the RocksDB store, in ``DIR/jiceng-store.json``; a restart (or
a reload) with the same files opens it without parsing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from server.offline import _FORMATS, QueryError, union_into_default

ONTOLOGY_DIR = Path(__file__).resolve().parents[1] / "ontology"
ONTOLOGY_GRAPH = "https://w3id.org/jiceng/ontology"
META_FILE = "jiceng-store.json"
_STORE_SUBDIR = "oxigraph"


class StoreError(QueryError):
    """The dump or the store cannot be loaded (one line, user-facing)."""


@dataclass
class Loaded:
    store: ox.Store | None  # None for a disk store (workers open it read-only)
    path: Path | None  # the RocksDB directory of a disk store
    dump_sha256: str
    reused: bool  # True when an existing disk store was opened as is


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _format(path: Path) -> ox.RdfFormat:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise StoreError(f"{path}: unknown RDF format (use .ttl, .nt, .nq, .trig, .jsonld, .rdf)")
    return fmt


def _load_into(store: ox.Store, data: Path, ontology: Path | None) -> None:
    try:
        store.bulk_load(path=str(data), format=_format(data))
    except (SyntaxError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"{data}: cannot parse: {msg}") from None
    union_into_default(store)
    if ontology is not None:
        try:
            store.bulk_load(
                path=str(ontology), format=_format(ontology), to_graph=ox.NamedNode(ONTOLOGY_GRAPH)
            )
        except (SyntaxError, ValueError, OSError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"{ontology}: cannot parse: {msg}") from None


def default_ontology() -> Path | None:
    path = ONTOLOGY_DIR / "jiceng.ttl"
    return path if path.is_file() else None


def load(data: Path, store_dir: Path | None = None, ontology: Path | None = None) -> Loaded:
    """Load ``data`` (+ ontology) into memory, or into/from the disk store ``store_dir``."""
    data = Path(data)
    if not data.is_file():
        raise StoreError(f"{data}: no such file")
    _format(data)
    if ontology is None:
        ontology = default_ontology()
    key = {"dump_sha256": sha256_file(data)}
    if ontology is not None:
        key["ontology_sha256"] = sha256_file(ontology)
    if store_dir is None:
        store = ox.Store()
        _load_into(store, data, ontology)
        return Loaded(store, None, key["dump_sha256"], False)

    store_dir = Path(store_dir)
    meta_path = store_dir / META_FILE
    try:
        meta = json.loads(meta_path.read_text("utf-8")) if meta_path.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    db = store_dir / Path(str(meta.get("db", _STORE_SUBDIR))).name  # never outside DIR
    if db.is_dir() and all(meta.get(k) == v for k, v in key.items()) and meta.get("complete"):
        return Loaded(None, db, key["dump_sha256"], True)
    # Different (or half-written) content: build a new directory beside the current one,
    # which a running server may still be reading (a reload), then point the metadata at it.
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        db = Path(tempfile.mkdtemp(prefix=_STORE_SUBDIR + "-", dir=store_dir))
        store = ox.Store(str(db))
    except OSError as exc:
        raise StoreError(f"{store_dir}: cannot open store: {exc}") from None
    try:
        _load_into(store, data, ontology)
        store.flush()
    except StoreError:
        del store
        shutil.rmtree(db, ignore_errors=True)
        raise
    del store  # close RocksDB before worker processes open it read-only
    meta = {**key, "dump": str(data.resolve()), "db": db.name, "complete": True}
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=1), "utf-8")
    os.replace(tmp, meta_path)  # atomic: a crash leaves the old store or the new one
    return Loaded(None, db, key["dump_sha256"], False)


def prune(store_dir: Path, keep: Path) -> None:
    """Delete the store directories in ``store_dir`` other than ``keep`` (earlier builds)."""
    for path in Path(store_dir).glob(_STORE_SUBDIR + "*"):
        if path.is_dir() and path.resolve() != Path(keep).resolve():
            shutil.rmtree(path, ignore_errors=True)


def open_read_only(path: Path) -> ox.Store:
    return ox.Store.read_only(str(path))
