"""Tokens per second of the local model for one llama.cpp build (issue 21: the portable
build against a native one).

Loads the shipped GGUF with the ``llama_cpp`` package found first on ``sys.path`` (put
another build first with ``PYTHONPATH=/dir/with/other/llama_cpp``), then ``--runs``
times: one prompt of ~``--prompt-words`` words, streamed ``--gen`` tokens at temperature
0. Prompt evaluation speed is prompt tokens / time to first token; generation speed is
(generated tokens - 1) / time from the first to the last token; each also per CPU-second
of this process (``*_cpu_tps``), which with ``--threads 1`` does not depend on what else
the machine runs. Prints mean, min and max
and writes a JSON result with ``git describe --dirty``, the library path, llama.cpp's
own system info (the instruction sets compiled in) and any AMX found in the build.

  python bench/llama_speed.py --label portable --out bench/results/llama_speed_portable.json
  PYTHONPATH=/tmp/native python bench/llama_speed.py --label native --out …
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(REPO))  # after a PYTHONPATH build, before site-packages

from bench.common import git_describe  # noqa: E402


def measure(llm, prompt: str, gen: int) -> dict[str, float]:
    """One streamed completion: ``{"prompt_tokens", "prompt_tps", "gen_tokens",
    "gen_tps", "seconds"}``."""
    n_prompt = len(llm.tokenize(prompt.encode("utf-8")))
    start, cpu_start = time.perf_counter(), time.process_time()
    first = last = cpu_first = cpu_last = None
    count = 0
    for _ in llm.create_completion(prompt, max_tokens=gen, temperature=0, stream=True):
        now, cpu = time.perf_counter(), time.process_time()
        if first is None:
            first, cpu_first = now, cpu
        last, cpu_last = now, cpu
        count += 1
    gen_steps = max(count - 1, 0)
    return {"prompt_tokens": n_prompt, "prompt_tps": n_prompt / (first - start),
            "gen_tokens": count, "gen_tps": gen_steps / (last - first) if gen_steps else 0.0,
            # per CPU-second of this process: with --threads 1, insensitive to other load
            "prompt_cpu_tps": n_prompt / max(cpu_first - cpu_start, 1e-9),
            "gen_cpu_tps": gen_steps / max(cpu_last - cpu_first, 1e-9) if gen_steps else 0.0,
            "seconds": last - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="name of the build, e.g. portable")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gen", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import llama_cpp
    from memory.llm import llama_build
    from memory.config import load_config
    from memory.llm.weights import assemble_model

    path = assemble_model(args.model, load_config(env_file=None).memory_model_dir)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=args.threads,
                          n_threads_batch=args.threads, verbose=False)
    words = ("The user lives in Lisbon, works as a nurse and likes tea and long walks. " * 40).split()
    prompt = " ".join(words[: args.prompt_words]) + "\nSummarise what you know about the user:"
    measure(llm, prompt[:200], 8)  # warm-up: page cache, thread pool
    runs = []
    for i in range(args.runs):
        llm.reset()
        runs.append(measure(llm, prompt, args.gen))
        print(f"run {i + 1}: prompt {runs[-1]['prompt_tps']:.1f} tok/s "
              f"({runs[-1]['prompt_cpu_tps']:.1f}/CPU-s), generation "
              f"{runs[-1]['gen_tps']:.1f} tok/s ({runs[-1]['gen_cpu_tps']:.1f}/CPU-s)", flush=True)

    def stats(key: str) -> dict[str, float]:
        values = [r[key] for r in runs]
        return {"mean": round(statistics.fmean(values), 2), "min": round(min(values), 2),
                "max": round(max(values), 2)}

    libs = llama_build.library_files(Path(llama_cpp.__file__).parent)
    result = {"benchmark": "llama_speed", "label": args.label, "git_describe": git_describe(),
              "model": args.model, "threads": args.threads, "runs": args.runs,
              "library": str(Path(llama_cpp.__file__).parent),
              "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
              "amx": llama_build.amx_instructions(libs), "zmm": llama_build.zmm_users(libs),
              "prompt_tps": stats("prompt_tps"), "gen_tps": stats("gen_tps"),
              "prompt_cpu_tps": stats("prompt_cpu_tps"), "gen_cpu_tps": stats("gen_cpu_tps"),
              "per_run": runs}
    print(json.dumps({k: result[k] for k in ("label", "git_describe", "threads", "prompt_tps",
                                             "gen_tps", "prompt_cpu_tps", "gen_cpu_tps",
                                             "amx", "zmm")}))
    print("system info:", result["system_info"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
