"""Resources without an LLM: type sniffing, chunking, relevance, batching, the SQLite
rows, the TiDB statements (compiled with the MySQL dialect) and the CLI wiring."""
from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy.dialects import mysql

from memory.resources.chunking import Chunk, about_user, batches, chunk_blocks
from memory.resources.extract import Block, markdown_blocks
from memory.resources.model import Resource
from memory.resources.sniff import DOCX, read_source, sniff
from memory.types import new_id

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


# ---- sniffing ----------------------------------------------------------------------------
def test_type_comes_from_content_not_name():
    assert sniff(b"I live in Berlin.", "x.bin") == "text/plain"
    assert sniff(b"# Title\n\nbody", "notes") == "text/markdown"
    assert sniff(b"plain words", "notes.md") == "text/markdown"
    assert sniff(b"  <!doctype html><html><body>x</body></html>", "page") == "text/html"
    assert sniff("我住在北京。".encode("gb18030"), "a") == "text/plain"
    assert sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "doc") == "application/pdf"
    assert sniff(b"", "x.pdf") == "application/x-empty"
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)
    assert sniff(buf.getvalue(), "cv") == DOCX
    assert sniff(buf.getvalue(), "cv.docx", "application/octet-stream") == DOCX
    with pytest.raises(ValueError, match="refused.*cv.pdf.*program"):
        sniff(b"MZ\x90\x00" + b"\x00" * 200, "cv.pdf")


def test_read_source_limits_and_names(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"12345")
    assert read_source(p, 5) == (b"12345", "a.txt")
    assert read_source(str(p), 5, "shown.txt")[1] == "shown.txt"
    with pytest.raises(ValueError, match="too large"):
        read_source(p, 4)
    with pytest.raises(ValueError, match="not a regular file"):
        read_source(tmp_path, 10)
    with pytest.raises(ValueError, match="cannot read"):
        read_source(tmp_path / "missing", 10)
    up = io.BytesIO(b"x" * 10)
    up.size = 10  # Streamlit's UploadedFile carries its size
    with pytest.raises(ValueError, match="too large"):
        read_source(up, 9)
    assert up.tell() == 0  # refused before reading
    with pytest.raises(ValueError, match="cannot read a resource"):
        read_source(42, 10)


# ---- structure ---------------------------------------------------------------------------
def test_markdown_blocks_carry_their_heading_path():
    blocks = markdown_blocks("# CV\n\nAnna\n\n## Work\n\n- nurse\n- intern\n\n### Old\n\nx\n\n## Hobbies\n\ncello\n")
    assert [(b.heading, b.text) for b in blocks] == [
        ("CV", "Anna"), ("CV > Work", "- nurse\n- intern"), ("CV > Work > Old", "x"),
        ("CV > Hobbies", "cello")]


def test_chunks_never_cross_headings_or_pages_and_long_blocks_split_at_sentences():
    long = " ".join(f"Sentence number {i} is here." for i in range(60))
    blocks = [Block("a", "H1"), Block("b", "H1"), Block("c", "H2"), Block("d", "", 1),
              Block("e", "", 2), Block(long, "H3")]
    chunks = chunk_blocks(blocks, max_chars=200)
    assert [c.text for c in chunks[:4]] == ["H1\na\n\nb", "H2\nc", "d", "e"]
    assert [c.page for c in chunks[2:4]] == [1, 2]
    rest = chunks[4:]
    assert len(rest) > 1 and all(len(c.text) <= 200 + len("H3\n") for c in rest)
    assert all(c.text.startswith("H3\n") and c.text.rstrip().endswith(".") for c in rest)
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_about_user_and_batches():
    assert about_user("I play the cello on Sundays.")
    assert about_user("Address: Hauptstr. 1, Berlin")
    assert about_user("## Experience\nNurse, Charite, 2019-now")
    assert about_user("我在医院工作。") and about_user("姓名：王小明")
    assert not about_user("The council approved the budget for the new bridge on Tuesday.")
    assert not about_user("大桥于1896年建成，连接两个城区。")
    chunks = [Chunk("x" * 100, i) for i in range(5)]
    assert [[c.position for c in b] for b in batches(chunks, 250)] == [[0, 1], [2, 3], [4]]
    assert [len(b) for b in batches([Chunk("y" * 500, 0)], 100)] == [1]  # never split


# ---- SQLite rows ---------------------------------------------------------------------------
@pytest.fixture()
def store(tmp_path):
    from memory.store.sqlite import SQLiteStore

    s = SQLiteStore(tmp_path / "m.db")
    s.open("emb", 4)
    yield s
    s.close()


def res(user="u", sha="a" * 64, **kw) -> Resource:
    return Resource(id=new_id(), user_id=user, filename="f.txt", mime="text/plain", size=3,
                    sha256=sha, **kw)


def test_sqlite_resource_rows(store):
    from memory.types import MemoryRecord

    first = store.insert_resource(res(detail={"k": [1]}))
    again = store.insert_resource(res())
    assert again.id == first.id  # one live row per user and sha256
    other = store.insert_resource(res(user="v"))
    assert other.id != first.id
    got = store.get_resource("u", first.id)
    assert got.detail == {"k": [1]} and got.created_at.tzinfo is not None
    assert store.get_resource("v", first.id) is None and store.find_resource("v", "a" * 64).id == other.id
    assert store.update_resource("u", first.id, status="ready")
    assert not store.update_resource("v", first.id, status="failed")
    with pytest.raises(ValueError, match="status"):
        store.update_resource("u", first.id, status="done")
    with pytest.raises(ValueError, match="cannot update"):
        store.update_resource("u", first.id, sha256="b" * 64)
    rec = MemoryRecord(id=new_id(), user_id="u", text="t", embedding=[1, 0, 0, 0],
                       metadata={"resource_id": first.id, "chunk": 0})
    store.insert_memories([rec, MemoryRecord(id=new_id(), user_id="u", text="c", embedding=[0, 1, 0, 0])])
    assert store.resource_memory_ids("u", first.id) == [rec.id]
    assert store.resource_memory_ids("v", first.id) == []
    assert store.resource_memory_counts("u") == {first.id: 1}
    assert store.update_resource("u", first.id, deleted_at=NOW)
    assert store.get_resource("u", first.id) is None
    assert store.get_resource("u", first.id, include_deleted=True).deleted_at == NOW
    assert store.find_resource("u", "a" * 64) is None
    fresh = store.insert_resource(res())  # a deleted row does not block the same file
    assert fresh.id != first.id
    assert [r.id for r in store.list_resources("u", include_deleted=True)] == [fresh.id, first.id]
    assert [r.id for r in store.list_resources("u")] == [fresh.id]
    assert {m.id for m in store.migration_status() if m.applied_at} >= {"0005_resources"}


# ---- TiDB statements -------------------------------------------------------------------------
def sql(stmt) -> str:
    return " ".join(str(stmt.compile(dialect=mysql.dialect())).split())


def test_tidb_resources_ddl_and_statements():
    from memory.store.tidb import build_schema
    from memory.store.tidb.migrations import migrations_for
    from memory.store.tidb.resources import ResourceSQL, resources_ddl, resources_table

    table = resources_table("t_")
    ddl = [sql(d) for d in resources_ddl(table)]
    assert ddl[0].startswith("CREATE TABLE IF NOT EXISTS t_resources ")
    assert "live_sha256 VARCHAR(64) GENERATED ALWAYS AS (IF(deleted_at IS NULL, sha256, NULL)) STORED" in ddl[0]
    assert "COLLATE utf8mb4_bin" in ddl[0] and "detail JSON NOT NULL" in ddl[0]
    assert "CREATE UNIQUE INDEX IF NOT EXISTS ux_t_resources_user_live_sha256 ON t_resources (user_id, live_sha256)" in ddl
    assert "CREATE INDEX IF NOT EXISTS ix_t_resources_user_created ON t_resources (user_id, created_at)" in ddl
    assert "0002_resources" in [m.id for m in migrations_for(None)]
    q = ResourceSQL(table, build_schema(8, "t_").memories)
    assert sql(q.insert_ignore({"id": "x", "user_id": "u"})).startswith("INSERT IGNORE INTO t_resources")
    for stmt in (q.live_by_sha("u", "s"), q.get("u", "r", False), q.list("u", False, 5, 0),
                 q.update("u", "r", {"status": "ready"}), q.memory_ids("u", "r", NOW),
                 q.memory_counts("u", NOW)):
        text = sql(stmt)
        assert "user_id = %s" in text, text
    assert "deleted_at IS NULL" in sql(q.get("u", "r", False))
    assert "deleted_at IS NULL" not in sql(q.get("u", "r", True))
    ids = sql(q.memory_ids("u", "r", NOW))
    assert "json_unquote(json_extract(t_memories.metadata, %s)) = %s" in ids and "expires_at" in ids
    assert "GROUP BY resource_id" in sql(q.memory_counts("u", NOW))


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_parser_and_run(tmp_path, capsys, monkeypatch):
    from main import script_options
    from memory.resources import cli

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    cli.add_parser(sub, script_options)
    args = p.parse_args(["resources", "add", "cv.pdf", "--user", "u", "--json"])
    assert (args.cmd, args.action, args.file, args.user, args.json) == ("resources", "add", "cv.pdf", "u", True)
    assert p.parse_args(["resources", "list", "--user", "u", "--all"]).all
    assert p.parse_args(["resources", "delete", "abcd", "--user", "u"]).id == "abcd"

    made = Resource(id="f" * 32, user_id="u", filename="cv.pdf", mime="application/pdf", size=10,
                    sha256="a" * 64, status="failed", error="the PDF is damaged", memory_count=0)

    class FakeMemory:
        closed = False

        def close(self):
            self.closed = True

    fake = FakeMemory()
    monkeypatch.setattr("memory.resources.ingest.add_resource", lambda mem, path, user: made)
    assert cli.run(args, lambda a: fake) == 1 and fake.closed  # failed → exit 1
    assert json.loads(capsys.readouterr().out)["error"] == "the PDF is damaged"
    monkeypatch.setattr("memory.resources.ingest.resources", lambda mem, user, **kw: [made])
    assert cli.run(p.parse_args(["resources", "list", "--user", "u", "--json"]), lambda a: fake) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [made.id]
    monkeypatch.setattr("memory.resources.ingest.resource", lambda mem, user, rid: None)
    with pytest.raises(ValueError, match="no resource"):
        cli.run(p.parse_args(["resources", "delete", "eeee", "--user", "u"]), lambda a: fake)
    deleted = []
    monkeypatch.setattr("memory.resources.ingest.delete_resource",
                        lambda mem, user, rid: deleted.append(rid) or True)
    assert cli.run(p.parse_args(["resources", "delete", "ffff", "--user", "u", "--json"]),
                   lambda a: fake) == 0
    assert deleted == [made.id] and json.loads(capsys.readouterr().out) == {"deleted": made.id}
