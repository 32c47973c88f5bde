"""Entry point: ``serve()`` for ``jiceng serve``; ``python -m server.run`` for tests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from server.offline import QueryError


def serve(
    data: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    store_dir: Path | None = None,
    update_token: str | None = None,
    timeout: float = 10.0,
    max_rows: int = 10000,
) -> None:
    """Load the dump and serve it until interrupted.

    A dump that cannot be loaded ends the process with a one-line message on
    stderr and exit status 2 (no traceback).
    """
    from server.app import create_app

    try:
        app = create_app(
            Path(data),
            store_dir=store_dir,
            update_token=update_token,
            timeout=timeout,
            max_rows=max_rows,
        )
    except QueryError as exc:
        print(f"jiceng serve: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m server.run", description=serve.__doc__)
    ap.add_argument("--data", type=Path, default=Path("build/kg.ttl"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--store", type=Path, default=None, dest="store_dir")
    ap.add_argument("--update-token", default=None)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--max-rows", type=int, default=10000)
    args = ap.parse_args(argv)
    serve(**vars(args))


if __name__ == "__main__":
    main()
