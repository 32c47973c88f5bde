"""``POST /admin/reload``: swap in a new dump without dropping a request (token required)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from server.backend import Backend
from server.sparql import require_token

router = APIRouter()
# Documents the bearer scheme in OpenAPI; the token itself is checked by require_token.
_bearer = HTTPBearer(auto_error=False, description="the server's --update-token")

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_RELOADED = {
    "type": "object",
    "properties": {
        "reloaded": {"type": "string", "description": "the dump now served (remote: endpoint)"},
        "triples": {"type": "integer"},
        "generation": {"type": "integer"},
        "seconds": {"type": "number"},
        "sha256": {"type": "string"},
    },
    "required": ["reloaded", "triples", "generation", "seconds"],
}


@router.post(
    "/admin/reload",
    summary="Reload the graph (needs the update token)",
    tags=["admin"],
    responses={
        200: {
            "description": "now serving the new graph",
            "content": {"application/json": {"schema": _RELOADED}},
        },
        400: {"description": "bad request", "content": _TEXT},
        403: {
            "description": "no or wrong token; or a path that may not be loaded",
            "content": _TEXT,
        },
        422: {
            "description": "the dump cannot be loaded; the old graph is still served",
            "content": _TEXT,
        },
        503: {
            "description": "the new graph could not be read in time; old graph kept",
            "content": _TEXT,
        },
    },
    dependencies=[Depends(_bearer)],
)
async def reload(
    request: Request,
    data: str | None = Query(
        None,
        description="the dump to load: the `--data` file (default: the one being served) "
        "or a file under a `--reload-dir`",
    ),
) -> Response:
    """Load the dump into a new store generation and switch to it atomically: requests
    already running finish on the old graph, new ones see the new graph, caches and
    ETags start afresh.  A dump that cannot be loaded leaves the old graph in service
    (422 with the message).  `kill -HUP <pid>` does the same for the current file.
    With `--backend sparql` this re-reads names and counts from the remote store."""
    be: Backend = request.app.state.backend
    require_token(request, be, "reloading")
    result = await be.reload(be.reload_target(data))
    return JSONResponse(result)
