"""Memory Chat in the terminal, and the memory CLI for scripts.

    python main.py --user seven                 # chat (REPL); /help lists the commands
    python main.py memories list --user seven [--json]
    python main.py memories search "football" --user seven [--limit 5] [--json]
    python main.py memories add "Likes tea" --user seven [--raw] [--type preference] [--json]
    python main.py memories delete ID --user seven [--json]
    python main.py memories export --user seven [--out FILE]
    python main.py memories import FILE --user seven [--json]
    python main.py migrate --to tidb|sqlite
    python main.py reembed

Exit codes: 0 ok, 2 bad usage (argparse), 1 runtime error with a one-line message.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memory.config import ConfigError, load_config

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

HELP = """Commands:
  /memories          list your memories
  /search TEXT       hybrid search of your memories
  /forget ID         delete a memory (an id prefix from /memories is enough)
  /history ID        the change history of a memory
  /profile           what the assistant knows about you, in short
  /new               start a new chat thread
  /threads           your chat threads (/open N to continue one)
  /user NAME         switch to another user
  /help              this help
  exit, quit, Ctrl-D leave"""


class CLIError(Exception):
    """A runtime error reported as one line with exit code 1."""


# ---- helpers ------------------------------------------------------------------------------
def _open_memory(args):
    from memory import Memory

    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["memory_data_dir"] = args.data_dir
    return Memory(load_config(**overrides))


def _resolve_id(mem, user: str, ident: str) -> str:
    """Return the full id of the user's memory whose id is ``ident`` or starts with it.
    Raises CLIError when none or several match."""
    ident = ident.strip()
    if mem.get(ident, user) is not None:
        return ident
    if len(ident) < 4:
        raise CLIError(f"no memory {ident!r} (give at least 4 characters of its id)")
    matches = [r.id for batch in mem.store.iter_memories(user, with_embedding=False)
               for r in batch if r.id.startswith(ident)]
    if not matches:
        raise CLIError(f"no memory with id {ident!r} for user {user!r}")
    if len(matches) > 1:
        raise CLIError(f"id prefix {ident!r} is ambiguous ({len(matches)} memories)")
    return matches[0]


def _memory_table(records, title: str, scores=None) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("type", style="magenta")
    table.add_column("imp", justify="right")
    table.add_column("created", no_wrap=True)
    if scores is not None:
        table.add_column("score", justify="right")
    table.add_column("text")
    for i, r in enumerate(records):
        row = [r.id[:8], r.type, str(r.importance), f"{r.created_at:%Y-%m-%d %H:%M}"]
        if scores is not None:
            row.append(f"{scores[i]:.4f}")
        row.append(r.text)
        table.add_row(*row)
    return table


def _print_changes(changes) -> None:
    marks = {"ADD": "[green]+ added[/]", "UPDATE": "[yellow]~ updated[/]",
             "DELETE": "[red]- deleted[/]"}
    shown = [c for c in changes if c.event in marks]
    if not shown:
        console.print("[dim](no new memories)[/]")
        return
    for c in shown:
        extra = f"  [dim](was: {c.old_text})[/]" if c.event == "UPDATE" and c.old_text else ""
        console.print(f"  {marks[c.event]} [cyan]{(c.id or '')[:8]}[/] {c.text}{extra}")


# ---- REPL -----------------------------------------------------------------------------------
def _setup_readline(data_dir: Path):
    try:
        import readline
    except ImportError:  # pragma: no cover - not on this platform
        return
    path = data_dir / ".chat_history"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if path.exists():
            readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)
    import atexit

    def _save():
        try:
            readline.write_history_file(path)
        except OSError:
            pass
    atexit.register(_save)


def repl(args) -> int:
    """Run the interactive chat for ``args.user`` until exit/quit/Ctrl-D. Returns 0."""
    mem = _open_memory(args)
    user = args.user
    _setup_readline(Path(mem.config.memory_data_dir))
    thread_id = args.thread
    console.print(f"[bold]Memory Chat[/] — user [cyan]{user}[/], {mem.count(user)} memories. "
                  "Type /help for commands.")
    listed_threads: list = []
    while True:
        try:
            line = input("You: ")
        except EOFError:
            console.print()
            break
        except KeyboardInterrupt:
            console.print()
            continue
        text = line.strip()
        if not text:
            continue
        if text.lower() in ("exit", "quit", "/exit", "/quit"):
            break
        try:
            if text.startswith("/"):
                cmd, _, arg = text.partition(" ")
                arg = arg.strip()
                if cmd == "/help":
                    console.print(HELP)
                elif cmd == "/memories":
                    recs = mem.list(user, limit=200)
                    console.print(_memory_table(recs, f"{mem.count(user)} memories of {user}"))
                elif cmd == "/search":
                    if not arg:
                        raise CLIError("usage: /search TEXT")
                    res = mem.search(arg, user, limit=10)
                    console.print(_memory_table([h.record for h in res.memories], f"search: {arg}",
                                                [h.score for h in res.memories]))
                elif cmd == "/forget":
                    if not arg:
                        raise CLIError("usage: /forget ID")
                    mid = _resolve_id(mem, user, arg)
                    mem.delete(mid, user)
                    console.print(f"[red]forgotten[/] {mid[:8]}")
                elif cmd == "/history":
                    if not arg:
                        raise CLIError("usage: /history ID")
                    mid = _resolve_id(mem, user, arg)
                    for ev in mem.history(mid, user):
                        console.print(f"  {ev.at:%Y-%m-%d %H:%M} [bold]{ev.event}[/] by {ev.actor}: "
                                      f"{ev.old_text or ''} → {ev.new_text or ''}")
                elif cmd == "/profile":
                    console.print(mem.profile(user) or "[dim](no profile yet)[/]")
                elif cmd == "/new":
                    thread_id = mem.new_thread(user).id
                    console.print("[dim]new chat started[/]")
                elif cmd == "/threads":
                    listed_threads = mem.threads(user, limit=20)
                    for i, t in enumerate(listed_threads, start=1):
                        mark = "*" if t.id == thread_id else " "
                        console.print(f" {mark}{i:>2}. {t.title}  [dim]{t.updated_at:%Y-%m-%d %H:%M}[/]")
                    if listed_threads:
                        console.print("[dim]/open N continues a thread[/]")
                elif cmd == "/open":
                    if not arg.isdigit() or not 1 <= int(arg) <= len(listed_threads):
                        raise CLIError("usage: /open N (after /threads)")
                    thread_id = listed_threads[int(arg) - 1].id
                    console.print(f"[dim]continuing: {listed_threads[int(arg) - 1].title}[/]")
                elif cmd == "/user":
                    if not arg:
                        raise CLIError("usage: /user NAME")
                    from memory.core import check_user_id
                    user, thread_id = check_user_id(arg), None
                    console.print(f"now chatting as [cyan]{user}[/] ({mem.count(user)} memories)")
                else:
                    raise CLIError(f"unknown command {cmd}; /help lists them")
                continue
            turn = mem.chat(text, user, thread_id)
            thread_id = turn.thread.id
            console.print("[bold green]Assistant:[/] ", end="")
            for delta in turn:
                console.out(delta, end="", highlight=False)
            console.print()
            if turn.error:
                console.print(f"[red]The assistant could not answer: {turn.error}[/] "
                              "[dim](your message is saved in the thread)[/]")
                continue
            with console.status("remembering…", spinner="dots"):
                changes = turn.changes()
            if turn.changes_error:
                console.print(f"[yellow]{turn.changes_error}[/]")
            _print_changes(changes)
        except (CLIError, ValueError) as exc:
            console.print(f"[red]{exc}[/]")
        except Exception as exc:  # noqa: BLE001 - never crash the chat
            logging.getLogger(__name__).debug("chat error", exc_info=True)
            console.print(f"[red]Error: {exc}[/]")
    mem.close()
    return 0


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
                  lambda: console.print(_memory_table(recs, f"{mem.count(user)} memories of {user}")))
        elif args.action == "search":
            res = mem.search(args.query, user, limit=args.limit,
                             filters={"types": [args.type]} if args.type else None)
            _emit(args, res.to_dict(), lambda: console.print(_memory_table(
                [h.record for h in res.memories], f"search: {args.query}",
                [h.score for h in res.memories])))
        elif args.action == "add":
            if args.raw:
                changes = mem.add(args.text, user, infer=False, memory_type=args.type or "fact",
                                  importance=args.importance)
            else:
                changes = mem.add(args.text, user)
                if mem.last_error:
                    raise CLIError(mem.last_error)
            _emit(args, [c.to_dict() for c in changes], lambda: _print_changes(changes))
        elif args.action == "delete":
            mid = _resolve_id(mem, user, args.id)
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
            try:
                data = json.loads(Path(args.file).read_text(encoding="utf-8"))
            except OSError as exc:
                raise CLIError(f"cannot read {args.file}: {exc.strerror}") from None
            except json.JSONDecodeError as exc:
                raise CLIError(f"{args.file} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
            report = mem.import_(data, user)
            _emit(args, report, lambda: console.print(
                f"imported {report['imported']}, skipped {report['skipped']} duplicates, "
                f"{report['threads']} threads"))
    finally:
        mem.close()
    return 0


def migrate_cmd(args) -> int:
    """Copy everything from the configured store to the other kind (``--to``)."""
    from memory.embedder import make_embedder
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
    from memory.maintenance import reembed

    report = reembed(load_config(), progress=not args.json)
    _emit(args, report, lambda: console.print(
        f"re-embedded {report['memories']} memories of {report['users']} users with {report['embedder']}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argparse parser for the chat and every subcommand."""
    p = argparse.ArgumentParser(prog="main.py", description="Memory Chat: a chat assistant that remembers you.")
    p.add_argument("--user", default=os.environ.get("MEMORY_USER", "default"), help="user id (default: default)")
    p.add_argument("--thread", help="continue this thread id")
    p.add_argument("--data-dir", help="override MEMORY_DATA_DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = p.add_subparsers(dest="cmd")

    m = sub.add_parser("memories", help="manage memories from scripts")
    msub = m.add_subparsers(dest="action", required=True)

    def common(sp):
        sp.add_argument("--user", required=True, help="user id")
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--data-dir", help="override MEMORY_DATA_DIR")
        return sp

    sp = common(msub.add_parser("list", help="list memories, newest first"))
    sp.add_argument("--limit", type=int, default=100)
    sp.add_argument("--type", choices=["profile", "preference", "fact", "task", "summary", "episode"])
    sp = common(msub.add_parser("search", help="hybrid search"))
    sp.add_argument("query")
    sp.add_argument("--limit", type=int, default=10)
    sp.add_argument("--type", choices=["profile", "preference", "fact", "task", "summary", "episode"])
    sp = common(msub.add_parser("add", help="add a memory (LLM extraction, or --raw verbatim)"))
    sp.add_argument("text")
    sp.add_argument("--raw", action="store_true", help="store the text verbatim, no LLM")
    sp.add_argument("--type", choices=["profile", "preference", "fact", "task", "summary", "episode"])
    sp.add_argument("--importance", type=int, choices=[1, 2, 3, 4, 5], default=3)
    sp = common(msub.add_parser("delete", help="delete a memory by id (or unique id prefix)"))
    sp.add_argument("id")
    sp = common(msub.add_parser("export", help="export all of a user's data as JSON"))
    sp.add_argument("--out", help="write to this file instead of stdout")
    sp = common(msub.add_parser("import", help="import a JSON export (duplicates skipped)"))
    sp.add_argument("file")

    mg = sub.add_parser("migrate", help="copy all data to the other store (TiDB <-> SQLite)")
    mg.add_argument("--to", required=True, choices=["tidb", "sqlite"])
    mg.add_argument("--json", action="store_true")
    re_ = sub.add_parser("reembed", help="re-embed all memories with the configured embedder")
    re_.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run. Returns the exit code (0, 1 or 2)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        from memory.core import check_user_id
        args.user = check_user_id(args.user)
        if args.cmd == "memories":
            return memories_cmd(args)
        if args.cmd == "migrate":
            return migrate_cmd(args)
        if args.cmd == "reembed":
            return reembed_cmd(args)
        return repl(args)
    except ConfigError as exc:
        err_console.print(f"Configuration error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, exit 1
        logging.getLogger(__name__).debug("error", exc_info=True)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err_console.print(f"Error: {msg}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
