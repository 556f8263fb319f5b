"""How much of the write path is hand-written language rules: lines of regexes and word lists inside its ``.py`` files.

Issue 22 asks for at most 300 such lines: understanding should come from the model's
structured output, classifiers on the embedder with labelled data files, or word lists
in data files (``memory/data/``), not per-language rules in code. This script counts, per
write-path module, the source lines spanned by

* ``re.compile(...)`` calls and module-level string constants used as regex parts
  (assignments whose value is a string literal or a concatenation of them containing a
  regex metacharacter ``|``, ``\\b``, ``(?``), and
* literal lists, tuples, sets and dicts holding at least three string constants (word
  lists),

counting each line once. It is a static measure (``ast``), not a judgement of each rule.

Usage::

    python bench/rule_lines.py            # table per module + total
    python bench/rule_lines.py --json
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import git_describe  # noqa: E402

#: The modules of the write path (learning from a turn or a file), by issue 22's list.
WRITE_PATH = ("write/pipeline", "write/intents", "write/stated", "write/cessation",
              "write/grounding", "write/atomic", "write/moves", "write/corrections",
              "write/forget", "text/dates_intl", "write/extract", "write/reconcile",
              "search/owner", "write/versions", "write/undo", "resources/chunking",
              "resources/ingest")
_REGEX_MARKS = ("|", "\\b", "(?", "[^")


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def rule_lines(path: Path) -> set[int]:
    """The line numbers of ``path`` spanned by regexes and word lists (see module doc)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines: set[int] = set()

    def span(node: ast.AST) -> None:
        lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "compile" and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "re":
            span(node)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)) and \
                sum(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts) >= 3:
            span(node)
        elif isinstance(node, ast.Dict) and len(_strings(node)) >= 6:
            span(node)
        elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.BinOp, ast.JoinedStr)):
            text = "".join(_strings(node.value))
            if any(mark in text for mark in _REGEX_MARKS):
                span(node)
    docs = set()
    for node in ast.walk(tree):  # docstrings are prose, not rules
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines - docs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for name in WRITE_PATH:
        path = REPO / "memory" / f"{name}.py"
        if path.exists():
            rows.append({"module": f"memory/{name}.py", "rule_lines": len(rule_lines(path)),
                         "lines": len(path.read_text(encoding="utf-8").splitlines())})
    total = sum(r["rule_lines"] for r in rows)
    if args.json:
        print(json.dumps({"commit": git_describe(), "total": total, "modules": rows}, indent=2))
        return 0
    print(f"write-path regex and word-list lines at {git_describe()}\n")
    print("| module | rule lines | all lines |\n|---|---:|---:|")
    for r in sorted(rows, key=lambda r: -r["rule_lines"]):
        print(f"| {r['module']} | {r['rule_lines']} | {r['lines']} |")
    print(f"| **total** | **{total}** | {sum(r['lines'] for r in rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
