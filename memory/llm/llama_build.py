"""What the installed llama.cpp build (llama-cpp-python's shared libraries) contains.

The default build must run on every x86-64 machine of the last decade (issue 21): a
build that carries Intel AMX tile code (``ldtilecfg``, ``tdpb*`` …, compiled in when pip
builds with ``-march=native`` on a CPU that reports AMX) dies with a general protection
fault on VMs that report AMX in cpuid without enabling its state. ``scripts/install.sh``
builds without it; ``amx_instructions`` proves it by disassembling the libraries.

CLI: ``python -m memory.llm.llama_build`` prints the libraries, the build flags recorded by
install.sh and any AMX / AVX-512 instruction found (exit 1 when AMX is found).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: every AMX mnemonic (Intel SDM vol. 2, "AMX": tile config, loads/stores, dot products)
AMX_MNEMONICS = frozenset({
    "ldtilecfg", "sttilecfg", "tilerelease", "tilezero", "tileloadd", "tileloaddt1",
    "tilestored", "tdpbssd", "tdpbsud", "tdpbusd", "tdpbuud", "tdpbf16ps", "tdpfp16ps",
    "tcmmimfp16ps", "tcmmrlfp16ps"})
#: one instruction line of ``objdump -d --no-show-raw-insn``: "  1a2b:\tldtilecfg (%rdi)"
_INSN = re.compile(r"^[ \t]*[0-9a-f]+:\t([a-z][a-z0-9.]*)", re.M)


class BuildScanError(RuntimeError):
    """The libraries could not be found or disassembled (``str(exc)`` says which)."""


def library_files(package_dir: Path | None = None) -> list[Path]:
    """The shared libraries of the installed ``llama_cpp`` package (``libggml*.so``,
    ``libllama*.so`` under ``llama_cpp/lib``), each distinct file once, sorted. Raises
    BuildScanError when the package or its libraries are missing."""
    if package_dir is None:
        spec = importlib.util.find_spec("llama_cpp")
        if spec is None or not spec.origin:
            raise BuildScanError("llama-cpp-python is not installed")
        package_dir = Path(spec.origin).parent
    unique: dict[tuple[int, str], Path] = {}
    for path in sorted(package_dir.rglob("*.so*"), key=lambda p: (len(p.name), p.name)):
        if path.is_file() and path.name.startswith(("libggml", "libllama")):
            # a wheel holds no symlinks: libggml-cpu.so, .so.0, .so.0.25.3 are copies
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            unique.setdefault((path.stat().st_size, digest), path)
    libs = sorted(unique.values())
    if not libs:
        raise BuildScanError(f"no libggml/libllama shared library under {package_dir}")
    return libs


def _disassembly(library: Path) -> str:
    """``objdump -d --no-show-raw-insn`` of ``library`` (binutils; the compiler's
    toolchain brings it), once per file per process. Raises BuildScanError when objdump
    is missing or fails."""
    return _disassemble(str(library))


@functools.lru_cache(maxsize=32)
def _disassemble(library: str) -> str:
    objdump = shutil.which("objdump")
    if objdump is None:
        raise BuildScanError("objdump (binutils) is needed to scan the llama.cpp build")
    proc = subprocess.run([objdump, "-d", "--no-show-raw-insn", library],
                          capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise BuildScanError(f"objdump failed on {library}: {proc.stderr.strip()[:200]}")
    return proc.stdout


def mnemonics(library: Path) -> Counter:
    """Count the instruction mnemonics in ``library``'s executable sections (from its
    disassembly). Raises BuildScanError when objdump is missing or fails."""
    return Counter(_INSN.findall(_disassembly(library)))


def amx_instructions(libraries: list[Path]) -> dict[str, dict[str, int]]:
    """``{library name: {AMX mnemonic: count}}`` for every library that has any
    (empty when the build is free of AMX)."""
    found: dict[str, dict[str, int]] = {}
    for lib in libraries:
        hits = {m: n for m, n in mnemonics(lib).items() if m in AMX_MNEMONICS}
        if hits:
            found[lib.name] = hits
    return found


def zmm_users(libraries: list[Path]) -> list[str]:
    """Names of the libraries whose code touches a 512-bit ``zmm`` register (AVX-512),
    which the portable build leaves out too."""
    return [lib.name for lib in libraries if "%zmm" in _disassembly(lib)]


def recorded_flags() -> str | None:
    """The CMake flags scripts/install.sh built the installed wheel with, if recorded
    (``llama_cpp/build-flags.txt`` is not shipped by pip; install.sh keeps them beside
    the cached wheel, so this reads the newest ``cmake-args.txt`` there), else None."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memory-chat"
    files = sorted((cache / "wheels").glob("llama-*/cmake-args.txt"),
                   key=lambda p: p.stat().st_mtime)
    return files[-1].read_text().strip() if files else None


def main(argv: list[str] | None = None) -> int:
    """Print the scan of the installed build; exit 1 when AMX code is in it, 2 when
    the scan cannot run."""
    try:
        libs = library_files()
        amx = amx_instructions(libs)
        zmm = zmm_users(libs)
    except BuildScanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("libraries:", ", ".join(p.name for p in libs))
    print("install.sh flags:", recorded_flags() or "(not recorded)")
    print("AMX instructions:", amx or "none")
    print("AVX-512 (zmm) code in:", ", ".join(zmm) or "none")
    return 1 if amx else 0


if __name__ == "__main__":
    raise SystemExit(main())
