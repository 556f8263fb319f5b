"""Memory Chat in the terminal (the REPL is in cli/repl.py), and the memory CLI for scripts.

    python main.py --user seven                 # chat (REPL); /help lists the commands
    python main.py memories list --user seven [--json]
    python main.py memories search "football" --user seven [--limit 5] [--json]
    python main.py memories add "Likes tea" --user seven [--raw] [--type preference] [--json]
    python main.py memories delete ID --user seven [--json]
    python main.py memories export --user seven [--out FILE]
    python main.py memories import FILE --user seven [--json]
    python main.py migrate --to tidb|sqlite        # copy every user's data to the other store
    python main.py migrate --status [--json]       # the store's named schema migrations
    python main.py reembed
    python main.py purge                           # erase forgotten memories past retention
    python main.py resources add FILE --user seven [--json]   # learn from a file
    python main.py resources list|delete ... --user seven
    python main.py serve [--host 127.0.0.1 --port 8000]   # HTTP API (docs/api.md)
    python main.py mcp --user seven                # MCP server on stdio for desktop agents

Exit codes: 0 ok, 2 bad usage or bad input (one line: a wrong option, a user id the
rule refuses, an import file that fails validation, a file `resources add` refuses or
cannot learn from: corrupt, empty, encrypted, scanned, a ZIP bomb), 1 runtime error
with a one-line message (the LLM or the store down).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from cli.output import CLIError, console, err_console, memory_table, print_changes, resolve_id
from cli.repl import repl
from memory.config import ConfigError, load_config
from memory.llm.errors import one_line
from memory.types import MEMORY_TYPES
from memory.safety.users import check_user_id
from memory.safety.validate import MAX_LIST_LIMIT


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2, no usage block)."""

    def error(self, message: str):
        """Print ``Error: <message>`` on one line and exit with code 2."""
        err_console.print(f"Error: {one_line(message)} (see {self.prog} --help)")
        sys.exit(2)


def _limit(text: str) -> int:
    """argparse type of ``--limit``: a whole number 1..10,000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
    if not 1 <= value <= MAX_LIST_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIST_LIMIT:,}")
    return value


# ---- helpers ------------------------------------------------------------------------------
def _open_memory(args):
    from memory import Memory

    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["memory_data_dir"] = args.data_dir
    return Memory(load_config(**overrides))



# ---- memory CLI -----------------------------------------------------------------------------
def _emit(args, data, human) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human()


def memories_cmd(args) -> int:
    """Run ``memories list|search|add|delete|export|import``. Returns the exit code."""
    mem = _open_memory(args)
    user = args.user
    try:
        if args.action == "list":
            recs = mem.list(user, limit=args.limit, types=[args.type] if args.type else None)
            _emit(args, [r.to_dict() for r in recs],
                  lambda: console.print(memory_table(recs, f"{mem.count(user)} memories of {user}")))
        elif args.action == "search":
            res = mem.search(args.query, user, limit=args.limit,
                             filters={"types": [args.type]} if args.type else None)
            _emit(args, res.to_dict(), lambda: console.print(memory_table(
                [h.record for h in res.memories], f"search: {args.query}",
                [h.score for h in res.memories])))
        elif args.action == "add":
            if args.raw:
                changes = mem.add(args.text, user, infer=False, memory_type=args.type or "fact",
                                  importance=args.importance)
            else:
                changes = mem.add(args.text, user)
                if changes.error:
                    raise CLIError(changes.error)
            _emit(args, [c.to_dict() for c in changes], lambda: print_changes(changes))
        elif args.action == "delete":
            mid = resolve_id(mem, user, args.id)
            mem.delete(mid, user)
            _emit(args, {"deleted": mid}, lambda: console.print(f"deleted {mid}"))
        elif args.action == "export":
            data = mem.export(user)
            text = json.dumps(data, ensure_ascii=False, indent=2)
            if args.out:
                Path(args.out).write_text(text, encoding="utf-8")
                err_console.print(f"exported {len(data['memories'])} memories to {args.out}")
            else:
                print(text)
        elif args.action == "import":
            from memory.backup import parse_export
            try:
                raw = Path(args.file).read_bytes()
            except OSError as exc:
                raise CLIError(f"cannot read {args.file}: {exc.strerror}") from None
            data = parse_export(raw, max_chars=mem.config.memory_max_message_chars)
            report = mem.import_(data, user)
            _emit(args, report, lambda: console.print(
                f"imported {report['imported']}, skipped {report['skipped']} duplicates, "
                f"{report['threads']} threads"))
    finally:
        mem.close()
    return 0


def migration_status_cmd(args) -> int:
    """Print the configured store's named schema migrations and when each ran. Opening
    the store applies pending ones (as every start does), so all show as applied unless
    the store refused to upgrade (then the error says why)."""
    from memory.store import create_store

    store = create_store(load_config())
    try:
        rows = store.migration_status()
    finally:
        store.close()
    data = [{"id": r.id, "doc": r.doc, "applied_at": r.applied_at} for r in rows]
    _emit(args, data, lambda: [console.print(f"{r['id']:<28} {r['applied_at'] or 'pending':<32} {r['doc']}", soft_wrap=True)
                                for r in data])
    return 0


def migrate_cmd(args) -> int:
    """Copy everything from the configured store to the other kind (``--to``)."""
    if args.status:
        return migration_status_cmd(args)
    from memory.embed.embedder import make_embedder
    from memory.migrate import migrate
    from memory.store import open_store

    config = load_config()
    src_kind = "sqlite" if args.to == "tidb" else "tidb"
    embedder = make_embedder(config)
    src = open_store(config.model_copy(update={"memory_store": src_kind}), embedder.id, embedder.dim)
    try:
        dst = open_store(config.model_copy(update={"memory_store": args.to}), embedder.id, embedder.dim)
        try:
            report = migrate(src, dst, progress=not args.json)
        finally:
            dst.close()
    finally:
        src.close()
    _emit(args, report, lambda: console.print(report))
    return 0


def reembed_cmd(args) -> int:
    """Re-embed every memory with the configured embedder (after changing EMBEDDER)."""
    from memory.embed.reembed import reembed

    report = reembed(load_config(), progress=not args.json)
    _emit(args, report, lambda: console.print(
        f"re-embedded {report['memories']} memories of {report['users']} users with {report['embedder']}"))
    return 0


def purge_cmd(args) -> int:
    """Erase, for every user, the memories forgotten in chat more than
    ``MEMORY_FORGET_RETENTION_HOURS`` ago (``memory.write.retention``)."""
    from memory.write.retention import purge_all

    mem = _open_memory(args)
    try:
        hours = mem.config.memory_forget_retention_hours
        erased = purge_all(mem.store, hours)
    finally:
        mem.close()
    _emit(args, {"erased": erased, "retention_hours": hours}, lambda: console.print(
        f"erased {erased} memories forgotten more than {hours:g} h ago"))
    return 0


def script_options(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options every script subcommand (``memories ...``, ``resources ...``) takes:
    ``--user`` (required), ``--json``, ``--data-dir``. Returns ``sp``."""
    sp.add_argument("--user", required=True, help="user id")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.add_argument("--data-dir", help="override MEMORY_DATA_DIR")
    return sp


def build_parser() -> argparse.ArgumentParser:
    """Return the argparse parser for the chat and every subcommand."""
    p = Parser(prog="main.py", description="Memory Chat: a chat assistant that remembers you.")
    p.add_argument("--user", default=os.environ.get("MEMORY_USER", "default"),
                   help="user id (default: default); see API.md for the rule")
    p.add_argument("--thread", help="continue this thread id")
    p.add_argument("--data-dir", help="override MEMORY_DATA_DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = p.add_subparsers(dest="cmd")

    m = sub.add_parser("memories", help="manage memories from scripts")
    msub = m.add_subparsers(dest="action", required=True)

    sp = script_options(msub.add_parser("list", help="list memories, newest first"))
    sp.add_argument("--limit", type=_limit, default=100)
    sp.add_argument("--type", choices=MEMORY_TYPES)
    sp = script_options(msub.add_parser("search", help="hybrid search"))
    sp.add_argument("query")
    sp.add_argument("--limit", type=_limit, default=10)
    sp.add_argument("--type", choices=MEMORY_TYPES)
    sp = script_options(msub.add_parser("add", help="add a memory (LLM extraction, or --raw verbatim)"))
    sp.add_argument("text")
    sp.add_argument("--raw", action="store_true", help="store the text verbatim, no LLM")
    sp.add_argument("--type", choices=MEMORY_TYPES)
    sp.add_argument("--importance", type=int, choices=[1, 2, 3, 4, 5], default=3)
    sp = script_options(msub.add_parser("delete", help="delete a memory by id (or unique id prefix)"))
    sp.add_argument("id")
    sp = script_options(msub.add_parser("export", help="export all of a user's data as JSON"))
    sp.add_argument("--out", help="write to this file instead of stdout")
    sp = script_options(msub.add_parser("import", help="import a JSON export (duplicates skipped)"))
    sp.add_argument("file")

    mg = sub.add_parser("migrate", help="copy all data to the other store (TiDB <-> SQLite), "
                                        "or --status: the schema migrations")
    what = mg.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", choices=["tidb", "sqlite"], help="copy everything to this store")
    what.add_argument("--status", action="store_true", help="list the named schema migrations")
    mg.add_argument("--json", action="store_true")
    from memory.resources.cli import add_parser as add_resources_parser
    add_resources_parser(sub, script_options)
    sv = sub.add_parser("serve", help="HTTP API + MCP over HTTP (docs/api.md)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    mc = sub.add_parser("mcp", help="MCP server on stdio for one user (desktop agents)")
    mc.add_argument("--user", required=True, help="the user whose memories the agent uses")
    pg = sub.add_parser("purge", help="erase memories forgotten in chat longer ago than "
                                      "MEMORY_FORGET_RETENTION_HOURS (every user)")
    pg.add_argument("--json", action="store_true")
    re_ = sub.add_parser("reembed", help="re-embed all memories with the configured embedder")
    re_.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run. Returns the exit code (0, 1 or 2)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.user = check_user_id(args.user)
        if args.cmd == "memories":
            return memories_cmd(args)
        if args.cmd == "migrate":
            return migrate_cmd(args)
        if args.cmd == "reembed":
            return reembed_cmd(args)
        if args.cmd == "purge":
            return purge_cmd(args)
        if args.cmd == "resources":
            from memory.resources.cli import run as run_resources
            return run_resources(args, _open_memory)
        if args.cmd == "serve":
            from memory.api.cli import serve
            return serve(args.host, args.port)
        if args.cmd == "mcp":
            from memory.api.cli import mcp_stdio
            return mcp_stdio(args.user)
        return repl(args, _open_memory)
    except ConfigError as exc:
        err_console.print(f"Configuration error: {one_line(exc)}")
        return 1
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # bad input: a refused user id, an invalid import file…
        err_console.print(f"Error: {one_line(exc)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, exit 1
        logging.getLogger(__name__).debug("error", exc_info=True)
        err_console.print(f"Error: {one_line(exc)}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
