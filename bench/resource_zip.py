"""Peak memory of reading a lying ZIP: a DOCX whose headers declare 900 KB for a ~2 GB ``word/document.xml`` (issue 24).

    python bench/resource_zip.py                  # 2,000,000,000 bytes inflated, declared 900 KB
    python bench/resource_zip.py --real-mb 512    # a smaller bomb (faster to write)
    python bench/resource_zip.py --cli            # also through `main.py resources add`
    python bench/resource_zip.py --cli --out bench/results/resource_zip.json

The DOCX is written with python-docx, its ``word/document.xml`` replaced by the real XML
plus a long run of spaces (deflate packs ~1,000 : 1), then the declared uncompressed
size is patched to 900 KB in the local header and in the central directory, so every
check made on the headers passes. Each reader runs in a fresh child process; its peak
RSS is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read after the child ended
(the only child of a fresh measuring process). Reports the error line, the exit code
and the peak RSS in MB; the limit the issue sets is 300 MB.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DECLARED = 900 * 1024
PART = "word/document.xml"
#: The peak RSS the issue allows for reading the lying ZIP.
LIMIT_MB = 300


def lying_docx(path: Path, real_bytes: int = 2_000_000_000, declared: int = DECLARED,
               text: str = "I live in Berlin.") -> Path:
    """Write to ``path`` a DOCX saying ``text`` whose ``word/document.xml`` really
    inflates to about ``real_bytes`` but declares ``declared`` bytes in both its local
    header and the central directory (CRC and compressed size stay true). Written in
    1 MB steps, so writing it holds no more than that. Returns ``path``."""
    import docx

    buf = io.BytesIO()
    d = docx.Document()
    d.add_paragraph(text)
    d.save(buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != PART:
                dst.writestr(info.filename, src.read(info.filename))
                continue
            xml = src.read(PART)
            head, _, tail = xml.partition(b"?>")
            pad = max(real_bytes - len(xml) - 7, 0)
            with dst.open(PART, "w") as out:
                out.write(head + b"?><!--")
                step = b" " * 2**20
                for _ in range(pad // len(step)):
                    out.write(step)
                out.write(b" " * (pad % len(step)) + b"-->" + tail)
    _patch_declared_size(path, PART, declared)
    return path


def _patch_declared_size(path: Path, name: str, size: int) -> None:
    """Overwrite the uncompressed size of part ``name`` in its local header (offset 22)
    and its central-directory entry (offset 24) with ``size``."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, info.header_offset + 22, size)
    encoded = name.encode()
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        (length,) = struct.unpack_from("<H", raw, at + 28)
        if raw[at + 46:at + 46 + length] == encoded:
            struct.pack_into("<I", raw, at + 24, size)
            break
        at = raw.find(b"PK\x01\x02", at + 46)
    else:
        raise ValueError(f"{name} not in the central directory")
    path.write_bytes(bytes(raw))


_EXTRACT = """
import sys
from memory.resources.extract import ResourceFailed, extract_blocks
data = open(sys.argv[1], "rb").read()
try:
    extract_blocks("docx", data, "lying.docx", "docx")
except ResourceFailed as exc:
    print(exc)
    sys.exit(2)
print("read without error")
"""

_MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
print(json.dumps({"exit": done.returncode, "peak_kb": peak,
                  "output": done.stdout.strip() or done.stderr.strip()}))
"""


def peak_rss(argv: list[str], env: dict | None = None) -> dict:
    """Run ``argv`` as the only child of a fresh measuring process and return
    ``{"exit", "peak_rss_mb", "said"}``: its exit code, its peak RSS in MB and what it
    printed (stdout, else stderr; the ``error`` of a ``--json`` resource)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=900).stdout
    got = json.loads(out)
    said = got["output"]
    try:
        said = json.loads(said).get("error") or said
    except (ValueError, AttributeError):
        pass
    return {"exit": got["exit"], "peak_rss_mb": round(got["peak_kb"] / 1024, 1), "said": said}


def run(real_bytes: int, cli: bool = False, workdir: Path | None = None) -> dict:
    """Write the lying DOCX and read it (extraction only, and with ``cli`` the whole
    `main.py resources add`); return the JSON-ready report."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = lying_docx(Path(tmp) / "lying.docx", real_bytes)
        report = {"file_bytes": path.stat().st_size, "declared_bytes": DECLARED,
                  "real_bytes": real_bytes, "limit_mb": LIMIT_MB}
        started = time.perf_counter()
        report["extract"] = peak_rss([sys.executable, "-c", _EXTRACT, str(path)])
        report["extract"]["seconds"] = round(time.perf_counter() - started, 2)
        if cli:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDB_", "DATABASE_"))}
            env.update(MEMORY_DATA_DIR=str(Path(tmp) / "data"), MEMORY_STORE="sqlite")
            started = time.perf_counter()
            report["cli"] = peak_rss([sys.executable, "main.py", "resources", "add", str(path),
                                      "--user", "bench", "--json"], env)
            report["cli"]["seconds"] = round(time.perf_counter() - started, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run once, print the report as JSON; exit 1 when a peak is over
    :data:`LIMIT_MB` or the file was not refused."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real-mb", type=float, help="inflated size in MB (default: 2,000,000,000 bytes)")
    ap.add_argument("--cli", action="store_true", help="also measure `main.py resources add`")
    ap.add_argument("--out", help="also write the JSON report to this file")
    args = ap.parse_args(argv)
    real = int(args.real_mb * 2**20) if args.real_mb else 2_000_000_000
    report = run(real, args.cli)
    from bench.common import git_describe
    report["git_describe"] = git_describe()
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    runs = [report[k] for k in ("extract", "cli") if k in report]
    ok = all(r["peak_rss_mb"] < LIMIT_MB and r["exit"] == 2 for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
