"""``create_app()``: the FastAPI application (routes under ``/v1``, MCP at ``/mcp``,
OpenAPI docs at ``/docs``) with its error shape, body guards and request log."""
from __future__ import annotations

import contextlib
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route

from memory.api import errors
from memory.api.deps import authenticate
from memory.api.engine import Engine
from memory.api.keys import KeyStore, open_keystore
from memory.api.limits import BodyGuardMiddleware, upload_body_limit
from memory.api.mcp_server import MCPEndpoint, build_mcp
from memory.api.requestlog import RequestLog, RequestLogMiddleware, default_log
from memory.api.routes import account, admin, chat, memories, resources

API_VERSION = "1.0"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(engine: Engine | None = None, *, keys: KeyStore | None = None,
               admin_key: str | None = None, request_log: RequestLog | None = None,
               host: str = "127.0.0.1", max_body: int | None = None,
               close_on_shutdown: bool = False) -> FastAPI:
    """Build the API app.

    ``engine``: an Engine (default ``Engine.from_env()``). ``keys``: a KeyStore (default
    ``<MEMORY_DATA_DIR>/keys.db``). ``admin_key``: default the engine's config
    ``MEMORY_ADMIN_KEY`` (environment or ``.env``; None or empty: the admin routes
    answer 403). ``request_log``: default the JSON-lines file in
    ``<MEMORY_DATA_DIR>/logs/`` echoed to stderr; the admin key is masked in it.
    ``host``: the bind address, for the MCP transport's DNS-rebinding protection on
    loopback. ``max_body``: bytes of JSON bodies (default the config's
    ``MEMORY_API_MAX_BODY_BYTES``, 4 MiB); an upload to ``/v1/resources`` may carry
    ``MEMORY_MAX_UPLOAD_MB`` and is refused (401) before its body is read when it
    carries no valid key. ``close_on_shutdown``: close the engine and key store when
    the app stops (the CLI's server owns them).
    """
    engine = engine or Engine.from_env()
    config = engine.memory.config
    keys = keys or open_keystore(engine.data_dir)
    if admin_key is None:
        admin_key = config.memory_admin_key
    log = request_log or default_log(engine.data_dir)
    log.mask(admin_key)
    mcp = build_mcp(engine)
    _mcp_transport(mcp, host)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        async with mcp.session_manager.run():
            yield
        if close_on_shutdown:
            keys.close()
            engine.close()
            log.close()

    max_body = max_body or config.memory_api_max_body_bytes
    app = FastAPI(title="Memory Chat API", version=API_VERSION, lifespan=lifespan,
                  description="Per-user long-term memory: memories, search, profile, "
                              "threads, streamed chat, uploaded files (resources), "
                              "export/import, MCP at /mcp. "
                              "Authenticate with `Authorization: Bearer <key>`.")
    app.state.engine, app.state.keys, app.state.admin_key = engine, keys, admin_key
    app.state.request_log = log
    errors.install(app)
    for module in (memories, resources, chat, account, admin):
        app.include_router(module.router)
    endpoint = MCPEndpoint(mcp, lambda header: authenticate(keys, header))
    app.router.routes.append(Route("/mcp", endpoint=endpoint,
                                   methods=["GET", "POST", "DELETE"], include_in_schema=False))
    uploads = {"/v1/resources": upload_body_limit(engine.max_upload_bytes)}
    app.add_middleware(BodyGuardMiddleware, max_body=max_body, uploads=uploads,
                       authenticate=lambda header: authenticate(keys, header))
    app.add_middleware(RequestLogMiddleware, log=log)
    return app


def _mcp_transport(mcp: Any, host: str) -> None:
    """Create the SDK's streamable-HTTP session manager (stateless, JSON answers: each
    request carries its own key). DNS-rebinding protection stays on for loopback; on
    another address the API key is the guard."""
    from mcp.server.transport_security import TransportSecuritySettings
    security = None if host in LOOPBACK else TransportSecuritySettings(
        enable_dns_rebinding_protection=False)
    mcp.streamable_http_app(stateless_http=True, json_response=True, host=host,
                            transport_security=security)

