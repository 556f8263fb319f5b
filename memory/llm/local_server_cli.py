"""``python -m memory.llm.local_server start|stop|status|path``: the offline model's servers
from the command line (the chat server, and the memory-work server when
``LOCAL_LLM_MEMORY_SERVER`` is on; ``memory.llm.local_server`` does the work)."""
from __future__ import annotations

import argparse
import json
import sys

from memory.config import Config, load_config
from memory.llm.errors import LocalModelError
from memory.llm.local_server import (MODELS, assemble_model, base_url, check_generation,
                              ensure_server, is_verified, log_path, memory_config, model_alias,
                              model_path, served_models, server_pid, spec_of, stop_all)


def status(config: Config) -> dict[str, object]:
    """Return ``{"running", "base_url", "model", "served", "pid", "model_path",
    "assembled", "log"}`` of ``config``'s server without starting anything, and for the
    chat server, the memory-work server's under ``"memory_server"`` (when it is on)."""
    models = served_models(config)
    path = model_path(config.local_llm_model, config.memory_model_dir)
    spec = spec_of(config.local_llm_model)
    return {
        "running": models is not None and model_alias(config) in models,
        "base_url": base_url(config),
        "model": model_alias(config),
        "served": models,
        "pid": server_pid(config),
        "model_path": str(path),
        "assembled": is_verified(path, path.with_name(path.name + ".sha256"), spec),
        "log": str(log_path(config)),
    } | ({"memory_server": status(memory_config(config))}
         if memory_config(config) is not config else {})


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``start`` (assemble + start or reuse both servers, then one short
    real generation, ``check_generation``; prints the chat server's base URL),
    ``stop`` (both), ``status`` (JSON) and ``path`` (assemble; prints the .gguf path).
    Returns the process exit code (1 with a one-line message on LocalModelError)."""
    parser = argparse.ArgumentParser(prog="python -m memory.llm.local_server",
                                     description="Manage the offline llama.cpp model server.")
    parser.add_argument("command", choices=["start", "stop", "status", "path"])
    parser.add_argument("--model", choices=sorted(MODELS), help="override LOCAL_LLM_MODEL")
    parser.add_argument("--port", type=int, help="override LOCAL_LLM_PORT")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if args.model:
        overrides["local_llm_model"] = args.model
    if args.port:
        overrides["local_llm_port"] = args.port
    config = load_config(**overrides)
    try:
        if args.command == "start":
            url = ensure_server(config)
            if memory_config(config) is not config:
                ensure_server(memory_config(config))
            text, seconds = check_generation(config)
            print(url)
            print(f"local model answered a test prompt in {seconds:.1f}s: {text.strip()!r}",
                  file=sys.stderr)
        elif args.command == "stop":
            print("stopped" if stop_all(config) else "no server of ours was running")
        elif args.command == "status":
            print(json.dumps(status(config), indent=2))
        else:
            print(assemble_model(config.local_llm_model, config.memory_model_dir))
    except LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
