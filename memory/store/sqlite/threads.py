"""Threads, messages and profiles of the SQLite store (short-term memory and the user summary)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from memory.store import common
from memory.store.sqlite import rows
from memory.store.sqlite.connection import Connections
from memory.types import Message, Thread


class Threads(Connections):
    """The threads-and-profile half of ``SQLiteStore``."""

    def get_profile(self, user_id: str) -> tuple[str, datetime | None]:
        """Return ``(profile_text, updated_at)`` or ``("", None)``."""
        with self._read() as conn:
            row = conn.execute("SELECT text, updated_at FROM profiles WHERE user_id = ?",
                               (user_id,)).fetchone()
        return ("", None) if row is None else (row[0], rows.dt(row[1]))

    def set_profile(self, user_id: str, text: str, at: datetime) -> None:
        """Store (replace) the profile text of ``user_id``."""
        values = rows.encode(common.profile_values(user_id, text, at))
        args = (values["user_id"], values["text"], values["updated_at"])
        with self._write() as conn:
            conn.execute("INSERT INTO profiles(user_id, text, updated_at) VALUES (?, ?, ?) "
                         "ON CONFLICT(user_id) DO UPDATE SET text = excluded.text, "
                         "updated_at = excluded.updated_at", args)

    def upsert_thread(self, thread: Thread) -> None:
        """Insert a thread or update its title, updated_at, summary and summarized_upto.
        Raises ValueError if the id belongs to another user's thread."""
        values = rows.encode(common.thread_values(thread))
        args = tuple(values[k] for k in common.THREAD_FIELDS)
        with self._write() as conn:
            cur = conn.execute(
                f"INSERT INTO threads({rows.THREAD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET title = excluded.title, "
                "updated_at = excluded.updated_at, summary = excluded.summary, "
                "summarized_upto = excluded.summarized_upto "
                "WHERE threads.user_id = excluded.user_id", args)
            if cur.rowcount == 0:
                raise ValueError(f"thread id {thread.id} belongs to another user")

    def get_thread(self, user_id: str, thread_id: str) -> Thread | None:
        """Return one thread of ``user_id`` or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {rows.THREAD_COLS} FROM threads WHERE user_id = ? "
                               "AND id = ?", (user_id, thread_id)).fetchone()
        return None if row is None else rows.thread(row)

    def list_threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Return up to ``limit`` threads of ``user_id``, most recently updated first."""
        with self._read() as conn:
            found = conn.execute(f"SELECT {rows.THREAD_COLS} FROM threads WHERE user_id = ? "
                                 "ORDER BY updated_at DESC, created_at DESC, rowid DESC LIMIT ?",
                                 (user_id, max(0, int(limit)))).fetchall()
        return [rows.thread(r) for r in found]

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete one thread of ``user_id`` and its messages (memories are kept).
        Returns False if ``user_id`` has no such thread."""
        with self._write() as conn:
            conn.execute("DELETE FROM messages WHERE user_id = ? AND thread_id = ?",
                         (user_id, thread_id))
            cur = conn.execute("DELETE FROM threads WHERE user_id = ? AND id = ?",
                               (user_id, thread_id))
            return cur.rowcount > 0

    def add_message(self, message: Message) -> Message:
        """Append ``message`` to its thread: ``seq`` = previous max + 1 (0 for the first),
        thread ``updated_at`` raised to the message's ``created_at``. Returns the stored
        message. Re-adding an id already stored in the same thread returns the stored
        message unchanged. Raises ValueError if the thread is not ``message.user_id``'s
        or the id is used elsewhere."""
        values = rows.encode(common.message_values(message))
        user_id, created = values["user_id"], values["created_at"]
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM threads WHERE user_id = ? AND id = ?",
                            (user_id, message.thread_id)).fetchone() is None:
                raise ValueError(f"thread {message.thread_id} does not exist for this user")
            old = conn.execute(f"SELECT {rows.MSG_COLS} FROM messages WHERE id = ?",
                               (message.id,)).fetchone()
            if old is not None:
                if old[1] == message.thread_id and old[2] == user_id:
                    return rows.message(old)
                raise ValueError(f"message id {message.id} is already used")
            seq = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE thread_id = ?",
                               (message.thread_id,)).fetchone()[0]
            values["seq"] = seq
            conn.execute(f"INSERT INTO messages({rows.MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         tuple(values[k] for k in common.MESSAGE_FIELDS))
            conn.execute("UPDATE threads SET updated_at = MAX(updated_at, ?) "
                         "WHERE user_id = ? AND id = ?", (created, user_id, message.thread_id))
        return replace(message, seq=seq)

    def get_messages(self, user_id: str, thread_id: str, *, after_seq: int = -1,
                     limit: int | None = None) -> list[Message]:
        """Return messages of ``user_id``'s thread with ``seq > after_seq``, oldest first;
        with ``limit``, only the last ``limit`` of them."""
        sql = (f"SELECT {rows.MSG_COLS} FROM messages WHERE user_id = ? AND thread_id = ? "
               "AND seq > ? ORDER BY seq DESC")
        args: list[Any] = [user_id, thread_id, int(after_seq)]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._read() as conn:
            found = conn.execute(sql, args).fetchall()
        return [rows.message(r) for r in reversed(found)]
