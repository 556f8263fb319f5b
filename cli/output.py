"""Terminal output and lookups shared by the REPL and the memory CLI: consoles, tables, change lines, id prefixes."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CLIError(Exception):
    """A runtime error reported as one line with exit code 1."""


def resolve_id(mem, user: str, ident: str) -> str:
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



def memory_table(records, title: str, scores=None) -> Table:
    """A rich Table of MemoryRecords (id prefix, type, importance, date, [score], text)."""
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



def print_changes(changes) -> None:
    """Print one coloured line per change that did something — ADD, UPDATE, END (no
    longer current, kept as past), FORGET, DELETE, UNDO, RESTORE — or "no new memories"."""
    marks = {"ADD": "[green]+ added[/]", "UPDATE": "[yellow]~ updated[/]",
             "END": "[magenta]- no longer current[/]", "FORGET": "[red]- forgotten[/]",
             "DELETE": "[red]- deleted[/]", "UNDO": "[blue]↶ undone[/]",
             "RESTORE": "[blue]↶ restored[/]"}
    shown = [c for c in changes if c.event in marks]
    if not shown:
        console.print("[dim](no new memories)[/]")
        return
    for c in shown:
        if c.event == "UPDATE" and c.old_text:
            extra = f"  [dim](was: {escape(c.old_text)})[/]"
        elif c.event == "UNDO" and c.old_text:
            extra = f"  [dim](instead of: {escape(c.old_text)})[/]" if c.text else ""
        else:
            extra = ""
        text = c.text or (c.old_text or "")
        console.print(f"  {marks[c.event]} [cyan]{(c.id or '')[:8]}[/] {escape(text)}{extra}")
