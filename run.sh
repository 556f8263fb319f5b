#!/usr/bin/env bash
# Start Memory Chat.
#
#   ./run.sh [streamlit args...]   # web app on http://localhost:${PORT:-8501}
#   ./run.sh chat [main.py args...] # terminal chat / memory CLI (python main.py ...)
#   ./run.sh serve [--host H --port P] # HTTP API on 127.0.0.1:8000, docs at /docs (docs/api.md)
#   ./run.sh mcp --user U            # MCP server on stdio for desktop agents (docs/api.md)
#
# Installs what is missing (scripts/install.sh), and when no OPENAI_BASE_URL /
# OPENAI_API_KEY is configured, assembles the offline model and starts its llama.cpp
# server in the background (reused if it already runs; stop it with
# `python -m memory.llm.local_server stop`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="${PYTHON:-python3}"

bash scripts/install.sh

# One BLAS thread: on a 2-core machine OpenBLAS worker threads spin-wait and steal the
# core the local LLM and SQLite need (measured in bench/README.md, latency section).
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

if "$PY" -c 'import sys; from memory.config import load_config; sys.exit(0 if load_config().uses_local_llm else 1)'; then
  echo "run: starting the offline model (first start assembles ~1 GB, then takes a few seconds)"
  "$PY" -m memory.llm.local_server start
fi

if [[ "${1:-}" == "chat" ]]; then
  shift
  exec "$PY" main.py "$@"
fi
if [[ "${1:-}" == "serve" || "${1:-}" == "mcp" ]]; then
  exec "$PY" main.py "$@"
fi
exec "$PY" -m streamlit run app.py --server.port "${PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false "$@"
