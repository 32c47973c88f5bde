"""Entry point: ``serve()`` for ``jiceng serve``; ``python -m server.run`` for tests."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import NoReturn

import uvicorn

from server.offline import QueryError

BACKENDS = ("embedded", "sparql")


def serve(
    data: Path | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    store_dir: Path | None = None,
    update_token: str | None = None,
    timeout: float = 10.0,
    max_rows: int = 10000,
    backend: str = "embedded",
    endpoint: str | None = None,
    update_endpoint: str | None = None,
    graph_store: str | None = None,
    default_graph: str | None = None,
    refresh: float = 60.0,
    reload_dirs: list[Path] | None = None,
) -> None:
    """Load the dump (or reach the remote store) and serve it until interrupted.

    ``backend="sparql"`` serves the store at ``endpoint`` instead of ``data``.  A dump
    that cannot be loaded or a remote that cannot be reached ends the process with a
    one-line message on stderr and exit status 2 (no traceback).
    """
    from server.app import create_app
    from server.remote import RemoteConfig

    remote = None
    if backend == "sparql":
        if not endpoint:
            _die("--backend sparql needs --endpoint URL")
        if store_dir:
            _die("--store is for the embedded backend; the remote store keeps its own data")
        remote = RemoteConfig(
            endpoint=endpoint,
            update_endpoint=update_endpoint or None,
            graph_store=graph_store or None,
            default_graph=default_graph or None,
        )
    elif backend != "embedded":
        _die(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    elif endpoint or update_endpoint or graph_store:
        _die("--endpoint, --update-endpoint and --graph-store need --backend sparql")
    # SIGHUP means "reload" once the server runs; while it loads, not "die".
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        app = create_app(
            Path(data) if remote is None and data is not None else None,
            store_dir=store_dir,
            update_token=update_token,
            timeout=timeout,
            max_rows=max_rows,
            remote=remote,
            refresh=refresh,
            reload_dirs=reload_dirs,
        )
    except QueryError as exc:
        _die(str(exc))
    _log_to_stderr()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # Room for a GET whose ?query= is at the 64 KiB limit once percent-encoded
        # (h11's default is 16 KiB); anything longer is refused with 400.  (With
        # httptools installed uvicorn uses it instead, which stops at 64 KiB.)
        h11_max_incomplete_event_size=256 * 1024,
    )


def _log_to_stderr() -> None:
    """Reloads (and their failures) are reported as one line each on stderr."""
    logger = logging.getLogger("jiceng")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("jiceng serve: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _die(message: str) -> NoReturn:
    print(f"jiceng serve: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_remote_arguments(ap: argparse.ArgumentParser) -> None:
    """The remote-backend options, shared by ``jiceng serve`` and ``python -m server.run``."""
    ap.add_argument(
        "--backend",
        choices=BACKENDS,
        default="embedded",
        help="embedded pyoxigraph store (default) or a remote SPARQL 1.1 store",
    )
    ap.add_argument("--endpoint", help="remote SPARQL query endpoint (--backend sparql)")
    ap.add_argument("--update-endpoint", help="remote SPARQL update endpoint (with a token)")
    ap.add_argument("--graph-store", help="remote Graph Store Protocol endpoint (for dumps)")
    ap.add_argument(
        "--default-graph",
        metavar="IRI",
        help="remote graph holding the data, sent as default-graph-uri",
    )
    ap.add_argument(
        "--refresh",
        type=float,
        default=60.0,
        metavar="S",
        help="remote: re-read names and counts every S seconds (0: never)",
    )


def add_reload_argument(ap: argparse.ArgumentParser) -> None:
    """``--reload-dir``, shared by ``jiceng serve`` and ``python -m server.run``."""
    ap.add_argument(
        "--reload-dir",
        action="append",
        type=Path,
        default=[],
        dest="reload_dirs",
        metavar="DIR",
        help="POST /admin/reload?data=FILE may load dumps under DIR (repeatable)",
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m server.run", description=serve.__doc__)
    ap.add_argument("--data", type=Path, default=Path("build/kg.ttl"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--store", type=Path, default=None, dest="store_dir")
    ap.add_argument("--update-token", default=None)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--max-rows", type=int, default=10000)
    add_remote_arguments(ap)
    add_reload_argument(ap)
    args = ap.parse_args(argv)
    serve(**vars(args))


if __name__ == "__main__":
    main()
