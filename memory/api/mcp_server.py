"""The MCP server (official ``mcp`` SDK, ``MCPServer``): memory tools for agents.

Tools: ``add_memory``, ``search_memories``, ``list_memories``, ``update_memory``,
``delete_memory``, ``get_profile``. Transports: stdio for one user given on the command
line (``python -m memory.api mcp --user U``), and streamable HTTP at ``/mcp`` inside the
API server, where the user comes from the request's API key (set on the ASGI scope by
``MCPEndpoint`` before the SDK sees the request). Tool failures are MCP tool errors with
the engine's one-line message.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from memory.api.engine import Engine, EngineUnavailable

INSTRUCTIONS = (
    "Long-term memory of one user, shared with their Memory Chat. Search it before "
    "answering questions about the user; add durable facts and preferences the user "
    "states (in their own language); update or delete a memory when the user corrects "
    "or withdraws it.")

MemoryType = Literal["profile", "preference", "fact", "task", "summary", "episode"]


def build_mcp(engine: Engine, user_id: str | None = None) -> MCPServer:
    """Return an MCPServer whose tools act on ``engine``.

    ``user_id``: the fixed user (stdio). None: each call's user is read from
    ``scope["state"]["user_id"]`` of its HTTP request (set by the API's key check).
    """
    server = MCPServer("memory-chat", instructions=INSTRUCTIONS, log_level="WARNING")

    def who(ctx: Context) -> str:
        if user_id is not None:
            return user_id
        request = ctx.request_context.request
        uid = ((getattr(request, "scope", None) or {}).get("state") or {}).get("user_id")
        if not uid:
            raise ToolError("not authenticated: send 'Authorization: Bearer <key>'")
        return uid

    def call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, EngineUnavailable) as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    def add_memory(
        text: Annotated[str, Field(description="What the user said or a fact about them, "
                                               "in their own words and language")],
        ctx: Context,
        infer: Annotated[bool, Field(description="true: let the memory model extract atomic "
                                                 "facts and reconcile them with stored ones; "
                                                 "false: store the text verbatim")] = True,
    ) -> dict[str, Any]:
        """Remember something about the user. Returns the changes made
        (ADD/UPDATE/END/FORGET/NONE) and the ``turn_id`` that undo takes."""
        return call(engine.add, who(ctx), text, infer=infer)

    @server.tool()
    def search_memories(
        query: Annotated[str, Field(description="What to look for, any language")],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=50, description="How many memories at most")] = 5,
        scope: Annotated[str, Field(max_length=200, description=(
            "all (default); chat: only memories not learned from a file; "
            "resource:<id>: only those learned from that uploaded file"))] = "all",
    ) -> dict[str, Any]:
        """Find the user's memories most relevant to a query (hybrid vector + keyword
        search), optionally limited to a scope. Returns the memories (id, text, type,
        score) and the user's profile."""
        res = call(engine.search, who(ctx), query, limit, scope=scope)
        return {"profile": res["profile"], "memories": [_short(m) for m in res["memories"]]}

    @server.tool()
    def list_memories(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size")] = 20,
        offset: Annotated[int, Field(ge=0, description="Skip this many (paging)")] = 0,
        memory_type: Annotated[MemoryType | None, Field(description="Only this type")] = None,
    ) -> dict[str, Any]:
        """List the user's memories, newest first, with the total count."""
        rows, total = call(engine.list, who(ctx), limit=limit, offset=offset,
                           types=[memory_type] if memory_type else None)
        return {"total": total, "memories": [_short(m) for m in rows]}

    @server.tool()
    def update_memory(
        memory_id: Annotated[str, Field(description="The id from search/list")],
        text: Annotated[str, Field(description="The corrected text")],
        ctx: Context,
    ) -> dict[str, Any]:
        """Replace the text of one memory (its history keeps the old text)."""
        rec = call(engine.update, who(ctx), memory_id, text)
        if rec is None:
            raise ToolError(f"no memory {memory_id!r}")
        return _short(rec)

    @server.tool()
    def delete_memory(
        memory_id: Annotated[str, Field(description="The id from search/list")],
        ctx: Context,
    ) -> dict[str, Any]:
        """Forget one memory of the user."""
        if not call(engine.delete, who(ctx), memory_id):
            raise ToolError(f"no memory {memory_id!r}")
        return {"deleted": memory_id}

    @server.tool()
    def get_profile(ctx: Context) -> dict[str, Any]:
        """The user's profile: what is known about them in short (may be empty)."""
        return {"profile": call(engine.profile, who(ctx))}

    return server


def _short(m: dict) -> dict:
    """The fields an agent needs from a memory dict."""
    out = {k: m.get(k) for k in ("id", "text", "type", "created_at")}
    if "score" in m:
        out["score"] = round(float(m["score"]), 4)
    return out


class MCPEndpoint:
    """ASGI endpoint for ``/mcp``: checks the API key (401 in the API's error shape),
    puts the user on the scope, and hands the request to the SDK's session manager."""

    def __init__(self, server: MCPServer, authenticate) -> None:
        self.server = server
        self.authenticate = authenticate  # (authorization header) -> Principal, raises ApiError

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        from fastapi.concurrency import run_in_threadpool
        from memory.api.errors import ApiError, error_response
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await run_in_threadpool(self.authenticate, headers.get("authorization"))
        except ApiError as exc:
            await error_response(exc.status, exc.message, exc.code, exc.headers)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user_id"], state["key_id"] = principal.user_id, principal.key_id
        await self.server.session_manager.handle_request(scope, receive, send)
