"""Terminal front end of resources: ``python main.py resources add|list|delete`` and the REPL's ``/ingest PATH``.

``main.py`` wires them (see ``add_parser``, ``run`` and ``repl_ingest``); output is a
rich table, or JSON with ``--json``. Exit codes, as main.py's: 0 ok; 2 bad input (a
refused, disguised or over-large file, an image or audio without its model, an unknown
id, or ``add`` ended ``failed`` because of the file: corrupt, empty, encrypted, scanned,
a ZIP bomb); 1 a runtime error (``add`` ended ``failed`` because the LLM was down, the
store failed). Errors are one line.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from memory.resources.model import Resource

USAGE = "/ingest PATH      learn from a file (text, Markdown, HTML, PDF, DOCX, image)"


def add_parser(sub: Any, common: Callable[[Any], Any]) -> Any:
    """Register ``resources`` with actions ``add FILE``, ``list``, ``delete ID`` on
    ``sub`` (main.py's ``add_subparsers`` object). ``common(parser)`` adds the options
    every script action takes and returns the parser (main.py's ``script_options``:
    ``--user`` (required), ``--json``, ``--data-dir``). Returns the ``resources`` parser."""
    r = sub.add_parser("resources", help="files the assistant learned from (add, list, delete)")
    rsub = r.add_subparsers(dest="action", required=True)
    sp = common(rsub.add_parser("add", help="learn from a file (text, Markdown, HTML, PDF, DOCX, image, audio)"))
    sp.add_argument("file")
    sp = common(rsub.add_parser("list", help="your resources, newest first, with status and memory counts"))
    sp.add_argument("--all", action="store_true", help="include deleted resources")
    sp = common(rsub.add_parser("delete", help="delete a resource (and the memories learned from it)"))
    sp.add_argument("id", help="resource id or a unique prefix of it")
    return r


def run(args: Any, open_memory: Callable[[Any], Any], console: Any = None) -> int:
    """Run ``resources add|list|delete`` for parsed ``args``; ``open_memory(args)``
    returns a Memory (closed here). Returns the exit code: 0; when ``add`` ended
    ``failed`` (the reason printed) 2 if the file was the reason
    (``Resource.bad_input``), else 1. Raises ValueError (one line) for a refused file or
    an unknown id; main.py prints it and exits 2."""
    from memory.resources import ingest

    console = console or _console()
    mem = open_memory(args)
    try:
        if args.action == "add":
            res = ingest.add_resource(mem, args.file, args.user)
            _emit(args, res.to_dict(), lambda: _print_added(console, res))
            return exit_code(res)
        if args.action == "list":
            items = ingest.resources(mem, args.user, include_deleted=args.all)
            _emit(args, [r.to_dict() for r in items], lambda: console.print(table(items, args.user)))
            return 0
        if args.action == "delete":
            rid = resolve(mem, args.user, args.id)
            ingest.delete_resource(mem, args.user, rid)
            _emit(args, {"deleted": rid}, lambda: console.print(f"deleted resource {rid}"))
            return 0
        raise ValueError(f"unknown action {args.action!r}")
    finally:
        mem.close()


def exit_code(res: Resource) -> int:
    """The exit code of ``resources add`` for the returned ``res``: 0 unless it
    ``failed``; then 2 when the file was the reason, 1 when a service was."""
    if res.status != "failed":
        return 0
    return 2 if res.bad_input else 1


def repl_ingest(mem: Any, user: str, arg: str, console: Any = None) -> Resource | None:
    """The REPL command ``/ingest PATH``: learn from the file, print the resource line
    and its changes (like a chat turn's). Returns the Resource (None for a missing
    path, with the usage printed). Raises ValueError for a refused file (the REPL
    prints it)."""
    from memory.resources import ingest

    console = console or _console()
    path = arg.strip().strip("'\"")
    if not path:
        console.print(f"usage: {USAGE}")
        return None
    with console.status(f"reading {path}…", spinner="dots"):
        res = ingest.add_resource(mem, path, user)
    _print_added(console, res)
    return res


def resolve(mem: Any, user: str, ident: str) -> str:
    """The full id of ``user``'s live resource whose id is ``ident`` or starts with it
    (at least 4 characters). Raises ValueError when none or several match."""
    from memory.resources import ingest

    ident = ident.strip()
    if ingest.resource(mem, user, ident) is not None:
        return ident
    if len(ident) < 4:
        raise ValueError(f"no resource {ident!r} (give at least 4 characters of its id)")
    matches = [r.id for r in ingest.resources(mem, user, limit=10_000) if r.id.startswith(ident)]
    if not matches:
        raise ValueError(f"no resource with id {ident!r} for user {user!r}")
    if len(matches) > 1:
        raise ValueError(f"id prefix {ident!r} is ambiguous ({len(matches)} resources)")
    return matches[0]


def table(items: list[Resource], user: str) -> Any:
    """A rich Table of resources: id prefix, file, type, size, status, memories, date."""
    from rich.table import Table

    t = Table(title=f"{len(items)} resources of {user}", show_lines=False)
    for col in ("id", "file", "type", "size", "status", "memories", "added"):
        t.add_column(col)
    for r in items:
        status = r.status if not r.error else f"{r.status}: {r.error}"
        if r.deleted_at is not None:
            status = f"deleted {r.deleted_at:%Y-%m-%d}"
        t.add_row(r.id[:8], r.filename, r.mime.split("/")[-1][:24], _size(r.size), status,
                  str(r.memory_count if r.memory_count is not None else "–"),
                  f"{r.created_at:%Y-%m-%d %H:%M}")
    return t


def _print_added(console: Any, res: Resource) -> None:
    from rich.markup import escape

    if res.status == "failed":
        console.print(f"[red]{escape(res.filename)}: failed[/] — {escape(res.error or '')}  "
                      f"[dim]({res.id[:8]})[/]")
        return
    seen = ""
    if res.duplicate:
        seen = (" (being learned from right now by another upload of the same file)"
                if res.status == "pending" else " (already known: the same file was added before)")
    console.print(f"[green]{escape(res.filename)}[/] {res.status} · {res.memory_count or 0} memories "
                  f"[dim]({res.id[:8]}, {res.mime})[/]{seen}")
    if res.duplicate:
        return
    marks = {"ADD": "[green]+ added[/]", "UPDATE": "[yellow]~ updated[/]", "DELETE": "[red]- deleted[/]"}
    for ch in res.detail.get("changes") or []:
        if ch.get("event") in marks:
            old = f" (was: {ch['old_text']})" if ch.get("old_text") else ""
            console.print(f"  {marks[ch['event']]} {str(ch.get('id') or '')[:8]} {ch.get('text')}{old}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _emit(args: Any, data: Any, human: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human()


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)
