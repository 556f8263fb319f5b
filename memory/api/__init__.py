"""Memory as a service: the HTTP API (FastAPI, ``/v1``), per-user API keys, the MCP
server and the request log, all over the same ``memory`` engine (see docs/api.md).

Entry points: ``memory.api.cli.serve(host, port)`` and ``memory.api.cli.mcp_stdio(user)``;
``python -m memory.api serve|mcp|user|key``. ``create_app`` builds the app for tests.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name):  # lazy: importing memory.api must not load FastAPI or the engine
    if name == "create_app":
        from memory.api.app import create_app
        return create_app
    raise AttributeError(name)
