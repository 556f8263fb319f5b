"""TiDB store, conversations: the profile text, threads and their messages."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from memory.store.common import message_values, profile_values, thread_values
from memory.store.tidb.retry import error_code
from memory.store.tidb.rows import message_from_row, thread_from_row
from memory.types import Message, Thread


class ThreadsMixin:
    """Profile, thread and message methods of ``TiDBStore`` (each one transaction
    through ``_tx``). Needs ``sql`` and ``_tx`` from the store."""

    # ---- profile --------------------------------------------------------------------
    def get_profile(self, user_id: str) -> tuple[str, datetime | None]:
        """Return ``(profile_text, updated_at)`` or ``("", None)``."""
        row = self._tx("read profile", lambda c: c.execute(self.sql.get_profile(user_id)).first())
        return (row[0], row[1]) if row else ("", None)

    def set_profile(self, user_id: str, text: str, at: datetime) -> None:
        """Store (replace) the profile text of ``user_id``."""
        p = profile_values(user_id, text, at)
        stmt = self.sql.set_profile(p["user_id"], p["text"], p["updated_at"])
        self._tx("write profile", lambda c: c.execute(stmt))

    # ---- threads --------------------------------------------------------------------
    def upsert_thread(self, thread: Thread) -> None:
        """Insert a thread or update its title, updated_at, summary and
        summarized_upto. Raises ValueError (nothing written) if the id belongs to another
        user's thread."""
        thread = Thread(**thread_values(thread))

        def work(c: Connection) -> None:
            c.execute(self.sql.upsert_thread(thread))
            # locking read: sees a row another session committed after this one began
            if c.execute(self.sql.get_thread(thread.user_id, thread.id,
                                             for_update=True)).first() is None:
                raise ValueError(f"thread id {thread.id} belongs to another user")

        self._tx("save thread", work)

    def get_thread(self, user_id: str, thread_id: str) -> Thread | None:
        """Return one thread of ``user_id`` or None."""
        row = self._tx("read thread",
                       lambda c: c.execute(self.sql.get_thread(user_id, thread_id)).first())
        return thread_from_row(row) if row else None

    def list_threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Threads of ``user_id``, most recently updated first."""
        stmt = self.sql.list_threads(user_id, limit)
        return self._tx("list threads", lambda c: [thread_from_row(r) for r in c.execute(stmt)])

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete a thread of ``user_id`` and its messages; False if absent."""
        def work(c: Connection) -> bool:
            msgs, thread = self.sql.delete_thread(user_id, thread_id)
            c.execute(msgs)
            return bool(c.execute(thread).rowcount)

        return self._tx("delete thread", work)

    def add_message(self, message: Message) -> Message:
        """Append ``message`` to its thread: locks the thread row (``SELECT ... FOR
        UPDATE``), assigns ``seq`` = previous max + 1 (0 first) and raises the thread's
        updated_at to the message's created_at, in one transaction. Re-adding an id
        already stored in the same thread returns the stored message (idempotent). Raises
        ValueError if the thread is not ``message.user_id``'s or the id is used elsewhere."""
        sql = self.sql
        stored = Message(**message_values(message))
        user_id = stored.user_id

        def work(c: Connection) -> Message:
            if not c.execute(sql.get_thread(user_id, message.thread_id, for_update=True)).first():
                raise ValueError(f"thread {message.thread_id} does not exist for this user")
            old = c.execute(sql.get_message(user_id, message.id)).first()
            if old is not None:
                if old._mapping["thread_id"] == message.thread_id:
                    return message_from_row(old)
                raise ValueError(f"message id {message.id} is already used")
            last = c.execute(sql.last_seq(user_id, message.thread_id)).scalar()
            stored.seq = 0 if last is None else int(last) + 1
            try:
                c.execute(sql.insert_message(stored))
            except sa.exc.IntegrityError as exc:
                if error_code(exc) == 1062 and "PRIMARY" in str(exc.orig):
                    raise ValueError(f"message id {message.id} is already used") from None
                raise
            c.execute(sql.bump_thread(user_id, message.thread_id, stored.created_at))
            return stored

        return self._tx("add message", work)

    def get_messages(self, user_id: str, thread_id: str, *, after_seq: int = -1,
                     limit: int | None = None) -> list[Message]:
        """Messages of one thread of ``user_id`` with seq > after_seq, in order; with
        ``limit`` the last ``limit`` of them."""
        stmt = self.sql.get_messages(user_id, thread_id, after_seq, limit)
        out = self._tx("read messages", lambda c: [message_from_row(r) for r in c.execute(stmt)])
        return out if limit is None else out[::-1]

