"""Command line of the API package: ``serve``, ``mcp`` (stdio) and user/key admin.

Entry points for other front ends (``main.py serve`` / ``main.py mcp``):
``serve(host="127.0.0.1", port=8000) -> int`` and ``mcp_stdio(user) -> int`` (exit codes:
0 ok, 1 error, 2 refused/bad usage; a one-line message on stderr).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _err(message: str, code: int = 1) -> int:
    print(f"memory.api: {message}", file=sys.stderr)
    return code


def serve(host: str = "127.0.0.1", port: int = 8000) -> int:
    """Run the HTTP API (and MCP at /mcp) with uvicorn until interrupted.

    Without ``MEMORY_ADMIN_KEY`` only a loopback ``host`` is allowed (returns 2 with the
    reason otherwise); a weak admin key (``memory.config.admin_key_problem``) or any
    invalid setting returns 2 with the one-line reason. Settings come from the
    environment/.env like the app. Returns the exit code (1 with a one-line message if
    the engine cannot start).
    """
    import uvicorn

    from memory.api.app import create_app
    from memory.api.engine import Engine
    from memory.config import ConfigError, load_config
    try:
        admin = load_config().memory_admin_key
    except ConfigError as exc:
        return _err(f"cannot start: {exc}", 2)
    if host not in LOOPBACK and not admin:
        return _err(f"refusing to listen on {host}: without MEMORY_ADMIN_KEY the server only "
                    "binds 127.0.0.1 (set MEMORY_ADMIN_KEY to serve other machines)", 2)
    try:
        engine = Engine.from_env()
        app = create_app(engine, host=host, close_on_shutdown=True)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback, for any startup failure
        from memory.llm.errors import one_line
        return _err(f"cannot start: {one_line(exc)}")
    print(f"memory.api: serving http://{host}:{port} (docs /docs, MCP /mcp); admin API "
          f"{'on' if admin else 'off (no MEMORY_ADMIN_KEY)'}; data in {engine.data_dir}",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    return 0


def mcp_stdio(user: str) -> int:
    """Serve the MCP tools over stdio for ``user`` (for desktop MCP clients) until the
    client closes stdin. Returns the exit code."""
    from memory.api.engine import Engine
    from memory.api.mcp_server import build_mcp
    from memory.core import check_user_id
    try:
        uid = check_user_id(user)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only MCP messages
            engine = Engine.from_env()
    except Exception as exc:  # noqa: BLE001
        from memory.llm.errors import one_line
        return _err(f"cannot start: {one_line(exc)}")
    try:
        build_mcp(engine, uid).run("stdio")
    finally:
        engine.close()
    return 0


def _keys():
    from memory.api.keys import open_keystore
    from memory.config import load_config
    return open_keystore(load_config().memory_data_dir)


def _admin(args: argparse.Namespace) -> int:
    from memory.api.keys import KeyStoreError
    from memory.config import ConfigError
    try:
        keys = _keys()
    except (ConfigError, OSError) as exc:
        return _err(f"cannot open the key store: {exc}", 2 if isinstance(exc, ConfigError) else 1)
    try:
        if args.cmd == "user" and args.action == "create":
            uid = keys.create_user(args.user)
            out = {"user_id": uid}
            if not args.no_key:
                key, info = keys.create_key(uid, args.label)
                out.update(key=key, key_id=info.key_id)
        elif args.cmd == "user":
            out = {"users": keys.users()}
        elif args.action == "create":
            key, info = keys.create_key(args.user, args.label)
            out = {"user_id": info.user_id, "key_id": info.key_id, "key": key}
        elif args.action == "list":
            out = {"keys": [k.__dict__ for k in keys.keys(args.user)]}
        elif args.action == "revoke":
            if not keys.revoke(args.key_id):
                return _err(f"no active key {args.key_id!r}")
            out = {"revoked": args.key_id}
        else:
            key, info = keys.rotate(args.key_id)
            out = {"user_id": info.user_id, "key_id": info.key_id, "key": key,
                   "revoked": args.key_id}
    except (KeyStoreError, ValueError) as exc:
        return _err(str(exc))
    finally:
        keys.close()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if "key" in out:
        print("memory.api: the key is shown only this once; store it now", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m memory.api`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m memory.api", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve", help="run the HTTP API (+ MCP at /mcp)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    mc = sub.add_parser("mcp", help="serve MCP over stdio for one user")
    mc.add_argument("--user", required=True)
    us = sub.add_parser("user", help="users in keys.db (no server needed)")
    us_sub = us.add_subparsers(dest="action", required=True)
    uc = us_sub.add_parser("create", help="create a user and (unless --no-key) a first key")
    uc.add_argument("user")
    uc.add_argument("--label", default="")
    uc.add_argument("--no-key", action="store_true")
    us_sub.add_parser("list")
    ky = sub.add_parser("key", help="API keys in keys.db (no server needed)")
    ky_sub = ky.add_subparsers(dest="action", required=True)
    kc = ky_sub.add_parser("create", help="issue a key for a user (shown once)")
    kc.add_argument("user")
    kc.add_argument("--label", default="")
    kl = ky_sub.add_parser("list")
    kl.add_argument("user", nargs="?")
    for name in ("revoke", "rotate"):
        ky_sub.add_parser(name).add_argument("key_id")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.cmd == "serve":
        return serve(args.host, args.port)
    if args.cmd == "mcp":
        return mcp_stdio(args.user)
    return _admin(args)
