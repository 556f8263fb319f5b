"""The interactive terminal chat (``python main.py --user NAME``): slash commands and one turn per line."""
from __future__ import annotations

import logging
from pathlib import Path

from rich.markup import escape

from cli.output import CLIError, console, memory_table, print_changes, resolve_id
from memory.safety.users import check_user_id

HELP = """Commands:
  /memories          list your memories
  /search TEXT       hybrid search of your memories
  /forget ID         erase a memory for good (an id prefix from /memories is enough)
  /undo              take back every change your last message made to your memories
  /past              earlier values and memories that are no longer current
  /history ID        the change history of a memory
  /profile           what the assistant knows about you, in short
  /image PATH [TEXT] send an image (described by VISION_MODEL) with optional text
  /ingest PATH       learn from a file (text, Markdown, HTML, PDF, DOCX, image, audio)
  /new               start a new chat thread
  /threads           your chat threads (/open N to continue one)
  /user NAME         switch to another user
  /help              this help
  exit, quit, Ctrl-D leave"""



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


def _chat(mem, user: str, thread_id: str | None, text: str, images=()) -> str:
    """One turn in the terminal (``memory.chat.turn.run_turn``): the reply printed as it
    streams, then what was learned. Returns the thread id."""
    from memory.chat.turn import run_turn

    started = []

    def show(delta: str) -> None:
        if not started:
            started.append(console.print("[bold green]Assistant:[/] ", end=""))
        console.out(delta, end="", highlight=False)

    turn = run_turn(mem, user, text, thread_id, images=images, on_token=show, learn=False)
    console.print()
    if turn.notice:
        console.print(f"[yellow]{turn.notice}[/]")
    if turn.retrieval_error:
        console.print(f"[yellow]{turn.retrieval_error}[/]")
    if turn.error:
        console.print(f"[red]The assistant could not answer: {turn.error}[/] "
                      "[dim](your message is saved in the thread)[/]")
        return turn.thread.id
    with console.status("remembering…", spinner="dots"):
        changes = turn.changes()
    if turn.changes_error:
        console.print(f"[yellow]{turn.changes_error}[/]")
    print_changes(changes)
    return turn.thread.id


def repl(args, open_memory) -> int:
    """Run the interactive chat for ``args.user`` until exit/quit/Ctrl-D. Returns 0."""
    mem = open_memory(args)
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
                    console.print(memory_table(recs, f"{mem.count(user)} memories of {user}"))
                elif cmd == "/search":
                    if not arg:
                        raise CLIError("usage: /search TEXT")
                    res = mem.search(arg, user, limit=10)
                    console.print(memory_table([h.record for h in res.memories], f"search: {arg}",
                                                [h.score for h in res.memories]))
                elif cmd == "/forget":
                    if not arg:
                        raise CLIError("usage: /forget ID")
                    mid = resolve_id(mem, user, arg)
                    mem.delete(mid, user)
                    console.print(f"[red]forgotten[/] {mid[:8]}")
                elif cmd == "/undo":
                    undone = mem.undo(user)
                    if undone:
                        print_changes(undone)
                    else:
                        console.print("[dim](nothing to undo)[/]")
                elif cmd == "/past":
                    for r in mem.past(user, limit=50):
                        console.print(f"  [cyan]{r.id[:8]}[/] {escape(r.text)} [dim]({r.status} "
                                      f"{r.invalid_at:%Y-%m-%d}, by {escape(r.invalid_reason or '?')})[/]")
                elif cmd == "/history":
                    if not arg:
                        raise CLIError("usage: /history ID")
                    mid = resolve_id(mem, user, arg)
                    for ev in mem.history(mid, user):
                        console.print(f"  {ev.at:%Y-%m-%d %H:%M} [bold]{ev.event}[/] by {escape(ev.who)}: "
                                      f"{ev.old_text or ''} → {ev.new_text or ''}")
                elif cmd == "/image":
                    path, _, said = arg.partition(" ")
                    if not path:
                        raise CLIError("usage: /image PATH [TEXT]")
                    try:
                        data = Path(path).expanduser().read_bytes()
                    except OSError as exc:
                        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
                    thread_id = _chat(mem, user, thread_id, said.strip(), [(path, data)])
                elif cmd == "/ingest":
                    from memory.resources.cli import repl_ingest
                    repl_ingest(mem, user, arg, console)
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
                    user, thread_id = check_user_id(arg), None
                    console.print(f"now chatting as [cyan]{user}[/] ({mem.count(user)} memories)")
                else:
                    raise CLIError(f"unknown command {cmd}; /help lists them")
                continue
            thread_id = _chat(mem, user, thread_id, text)
        except (CLIError, ValueError) as exc:
            console.print(f"[red]{exc}[/]")
        except Exception as exc:  # noqa: BLE001 - never crash the chat
            logging.getLogger(__name__).debug("chat error", exc_info=True)
            console.print(f"[red]Error: {exc}[/]")
    mem.close()
    return 0


