"""Architecture rules of memory/ (issue 26, point 1), checked on the source's AST.

1. **No import circles inside memory/.** Every ``import``/``from … import`` of a
   ``memory.*`` module counts — at module level, inside functions (a lazy import that
   only dodges a circle is still a circle), and under ``if TYPE_CHECKING:``. Not counted:
   imports under a module-level ``if __name__ == "__main__":`` (that code runs only when
   the file is executed as the script ``__main__``, e.g. ``python -m memory.llm.local_server``,
   and then imports a fresh ``memory.llm.local_server``); the implicit import of a parent
   package (``memory/store/__init__`` importing its own submodules is package mechanics);
   and imports by string (``importlib.import_module``). ``from memory.x import y`` is an
   edge to ``memory.x.y`` when that is a module, else to ``memory.x``.
   Before issue 26 this failed with three circles: ``memory.core`` ↔
   ``memory.resources.ingest`` (lazy both ways: ``ingest._uid`` imported
   ``check_user_id`` from core), ``memory.write.stated`` ↔ ``memory.write.moves`` (``stated`` imported
   ``city_of`` lazily, "moves imports this module"), ``memory.llm.local_server`` ↔
   ``memory.llm.local_server_cli`` (lazy ``status``/``main`` wrappers in local_llm).

2. **Only memory/core.py touches the private members of ``Memory``.** The private
   names are read from the ``Memory`` class in memory/core.py (methods, class attributes
   and ``self._x = …`` attributes whose name starts with one underscore); any
   ``<expr>._name`` (or ``getattr(<expr>, "_name")``) with such a name in a project
   module other than memory/core.py fails, whatever the receiver is called (``mem``,
   ``memory``, ``self.mem``…); ``self._name``/``cls._name`` are a class's own members and
   not counted. tests/ is not scanned. Before issue 26 this failed on ``turn.py``
   (``mem._learn``), ``learn.py`` (``mem._user_lock`` ×3) and ``resources/ingest.py``
   (``memory._user_lock`` ×2).

The ``*_catches_*`` tests run the same checks on small sources of those historical
shapes, so a check that silently finds nothing cannot pass.
"""
from __future__ import annotations

import ast
from pathlib import Path

import memory

ROOT = Path(__file__).resolve().parents[1]
NOT_SCANNED = {"tests", "test-artifacts", "data"}


def module_files(root: Path, package: str = "memory") -> dict[str, Path]:
    """``{dotted module name: file}`` for every .py file of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_main_guard(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') in (
        '__name__ == "__main__"', '"__main__" == __name__')


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """``[(imported module, line)]`` of module ``name`` (see rule 1 for what counts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    nodes = [n for top in tree.body if not _is_main_guard(top) for n in ast.walk(top)]
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [known(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else known(base)
                       for a in node.names]
        else:
            continue
        out += [(t, node.lineno) for t in targets if t and t != name]
    return out


def import_circles(root: Path, package: str = "memory") -> list[list[str]]:
    """Each import circle of ``package`` as a list of ``"a -> b (line n)"`` edges inside
    one strongly connected component of the import graph (Tarjan)."""
    modules = module_files(root, package)
    edges = {m: imports_of(m, p, modules) for m, p in modules.items()}
    graph = {m: sorted({t for t, _ in e}) for m, e in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted({f"{a} -> {t} (line {n})" for a in component
                                       for t, n in edges[a] if t in component}))

    for module in graph:
        if module not in index:
            visit(module)
    return circles


def memory_privates(core: Path) -> set[str]:
    """Names of the ``Memory`` class's private members in ``core`` (see rule 2)."""
    cls = next(n for n in ast.parse(core.read_text(encoding="utf-8")).body
               if isinstance(n, ast.ClassDef) and n.name == "Memory")
    names = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {t.id for n in cls.body if isinstance(n, (ast.Assign, ast.AnnAssign))
              for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
              if isinstance(t, ast.Name)}
    names |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
              and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name)
              and n.value.id == "self"}
    return {n for n in names if n.startswith("_") and not n.startswith("__") and n != "_"}


def private_uses(source: str, privates: set[str]) -> list[str]:
    """``["line n: expr"]`` for each use of one of ``privates`` on another object."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in privates:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in privates):
            found.append((node.lineno, ast.unparse(node)))
    return [f"line {n}: {text}" for n, text in sorted(found)]


def project_files(root: Path) -> list[Path]:
    """The project's .py files outside tests/ (and hidden/data folders)."""
    return [p for p in sorted(root.rglob("*.py"))
            if not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.relative_to(root).parts[0] not in NOT_SCANNED]


def test_no_import_circles_in_memory():
    assert import_circles(ROOT) == []


def test_no_module_but_core_uses_a_private_member_of_memory():
    core = ROOT / "memory" / "core.py"
    privates = memory_privates(core)
    assert "_add_raw" in privates  # the check reads real names (core's own helper)
    found = {str(p.relative_to(ROOT)): uses for p in project_files(ROOT) if p != core
             for uses in [private_uses(p.read_text(encoding="utf-8"), privates)] if uses}
    assert found == {}


def test_memory_exports_changes_as_public_surface():
    from memory.core import Changes as core_changes
    assert "Changes" in memory.__all__ and memory.Changes is core_changes
    assert memory.Changes([], error="why").error == "why"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_the_circle_check_catches_lazy_and_type_checking_circles(tmp_path):
    root = _write(tmp_path, {
        "memory/__init__.py": "",
        # the old stated <-> moves shape: one side imports the other inside a function
        "memory/write/moves.py": "from memory.write.stated import PLACE\n",
        "memory/write/stated.py": "def f():\n    from memory.write.moves import city_of\n",
        # a circle made only by a type-checking import
        "memory/core.py": "from memory.chat.turn import start_turn\n",
        "memory/chat/turn.py": "if TYPE_CHECKING:\n    from memory.core import Memory\n",
        # relative imports, and a `from package import module` edge
        "memory/resources/__init__.py": "",
        "memory/resources/ingest.py": "from ..write import pipeline\n",
        "memory/write/pipeline.py": "from memory.resources import ingest\n",
        # a script entry point is not an edge; a one-way import is not a circle
        "memory/llm/local_server.py": 'if __name__ == "__main__":\n    from memory.llm.local_server_cli import main\n',
        "memory/llm/local_server_cli.py": "from memory.llm.local_server import status\n",
    })
    assert sorted(import_circles(root)) == sorted([
        ["memory.chat.turn -> memory.core (line 2)", "memory.core -> memory.chat.turn (line 1)"],
        ["memory.resources.ingest -> memory.write.pipeline (line 1)",
         "memory.write.pipeline -> memory.resources.ingest (line 1)"],
        ["memory.write.moves -> memory.write.stated (line 1)", "memory.write.stated -> memory.write.moves (line 2)"],
    ])


def test_the_private_check_catches_the_old_accesses(tmp_path):
    core = _write(tmp_path, {"core.py": (
        "class Memory:\n"
        "    def __init__(self):\n        self._user_locks = {}\n"
        "    def _learn(self): ...\n    def _user_lock(self, uid): ...\n"
        "    _cache = None\n"
        "    def add(self):\n        _tmp = 1\n        return self._learn()\n")}) / "core.py"
    privates = memory_privates(core)
    assert privates == {"_learn", "_user_lock", "_user_locks", "_cache"}  # not locals
    old = ("changes = mem._learn(turn.user_id, turn.thread.id)\n"   # turn.py
           "with memory._user_lock(uid):\n    pass\n"                # resources/ingest.py
           "self.mem._user_locks.clear()\n"
           "getattr(mem, '_learn')()\n"
           "self._learn()\n")                                        # a class's own: fine
    assert private_uses(old, privates) == [
        "line 1: mem._learn", "line 2: memory._user_lock", "line 4: self.mem._user_locks",
        "line 5: getattr(mem, '_learn')"]
