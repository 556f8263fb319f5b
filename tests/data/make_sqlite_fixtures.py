"""Build a tiny fixture SQLite store with the store module at argv[1] (an old commit's sqlite.py) into argv[2]; see tests/data/README.md."""
import importlib.util
import os
import sys
from datetime import datetime, timezone, timedelta
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from memory.types import MemoryRecord, HistoryEvent, Thread, Message
src, out = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("oldsqlite", src)
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
import os
if os.path.exists(out): os.remove(out)
# The old store predates migrate/migration_status/transaction, now abstract in Store.
mod.SQLiteStore.__abstractmethods__ = frozenset()
s = mod.SQLiteStore(out, vec_chunk_size=8)
s.open("fixture-embedder", 4)
t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
def v(i):
    x = np.random.default_rng(i).normal(size=4); return (x/np.linalg.norm(x)).tolist()
recs = [
  MemoryRecord(id="a"*32, user_id="alice", text="I like green tea", type="preference", embedding=v(1), created_at=t0, updated_at=t0, tags=["drink"]),
  MemoryRecord(id="b"*32, user_id="alice", text="Sure, tomorrow", type="event", embedding=v(2), created_at=t0+timedelta(days=1), updated_at=t0+timedelta(days=1), metadata={"context": "Are you coming to the concert?"}),
  MemoryRecord(id="c"*32, user_id="bob", text="我住在福州", type="fact", embedding=v(3), created_at=t0+timedelta(days=2), updated_at=t0+timedelta(days=2)),
]
s.insert_memories(recs, [HistoryEvent(memory_id=r.id, user_id=r.user_id, event="ADD", old_text=None, new_text=r.text, actor="user", at=r.created_at, id=r.id[:8]+"h"*24) for r in recs])
s.set_profile("alice", "Alice likes tea.", t0)
s.upsert_thread(Thread(id="t"*32, user_id="alice", title="Tea talk", created_at=t0, updated_at=t0))
s.add_message(Message(id="m"*32, thread_id="t"*32, user_id="alice", role="user", content="hello", created_at=t0))
s.close()
c = mod.load_sqlite_module().connect(out, isolation_level=None)
c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.execute("PRAGMA journal_mode=DELETE"); c.execute("VACUUM"); c.close()
for ext in ("-wal", "-shm"):
    if os.path.exists(out+ext): os.remove(out+ext)
print(out, os.path.getsize(out))
