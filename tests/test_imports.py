"""How Kayan's modules import each other: `import kayan` stays light, no module imports itself back
(function-local imports included), and each stage imports only the stages before it."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

KAYAN = Path(__file__).resolve().parent.parent / "kayan"
# The stages, each a subpackage that may import only the stages before it (and kayan's top-level modules).
STAGES = {
    "kayan.data": set(),
    "kayan.model": {"kayan.data"},
    "kayan.evaluation": {"kayan.data", "kayan.model"},
    "kayan.training": {"kayan.data", "kayan.model", "kayan.evaluation"},
    "kayan.inference": {"kayan.data", "kayan.model", "kayan.evaluation"},
    "kayan.serve": {"kayan.data", "kayan.model", "kayan.evaluation", "kayan.inference"},
}
# The programs on top of the stages: they may import any stage. Every other top-level module (config, checks,
# errors, atomic, files, outputs, run, console, lazy, and kayan itself) is shared by all stages, so it imports
# no stage: a stage importing it would otherwise import a later stage through it.
SHELLS = {"kayan.cli", "kayan.scale", "kayan.__main__"}
HEAVY = ("torch", "transformers", "datasets")


def test_import_kayan_and_its_stage_packages_loads_no_torch_or_transformers():
    code = ("import sys, kayan, kayan.data, kayan.model, kayan.evaluation, kayan.training, kayan.inference; "
            f"print(sorted(m for m in {HEAVY} if m in sys.modules), kayan.load.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] kayan.inference.predict"


def test_evaluating_a_predictions_file_imports_no_model_library(tmp_path):
    predictions = tmp_path / "p.txt"
    predictions.write_text("زار O O\nبغداد B-LOC B-LOC\n", encoding="utf-8")
    code = ("import sys; from kayan.cli import main; status = main(['evaluate', '--predictions', sys.argv[1], '--json']); "
            f"print(status, sorted(m for m in {HEAVY} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(predictions)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"


def _module_name(path: Path) -> str:
    parts = path.relative_to(KAYAN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(body: list[ast.stmt]):
    """Every import statement of ``body``: in functions, classes and ``if``/``try``/``with`` blocks too
    (a function-local import is a dependency as real as a module-level one), but not in
    ``if TYPE_CHECKING:`` blocks, which never run."""
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _imports(node.orelse)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _imports([child])
                elif isinstance(child, (ast.ExceptHandler, ast.match_case)):
                    yield from _imports(child.body)


def _imported_names(path: Path) -> set[str]:
    """``module`` or ``module.name`` for everything ``path`` imports, relative imports resolved."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                base = ".".join([package.rsplit(".", node.level - 1)[0], *([node.module] if node.module else [])])
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _kayan_imports(path: Path, modules: set[str]) -> set[str]:
    """The Kayan modules that ``path`` imports, anywhere in it."""
    # `from kayan.data import corpora` names a module; `from kayan.data.corpora import load` names a function
    found = {name if name in modules else name.rpartition(".")[0] for name in _imported_names(path)}
    return found & modules - {"kayan"}


def _import_graph() -> dict[str, set[str]]:
    paths = sorted(KAYAN.rglob("*.py"))
    modules = {_module_name(path) for path in paths}
    return {_module_name(path): _kayan_imports(path, modules) - {_module_name(path)} for path in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def _stage(module: str) -> str | None:
    return next((stage for stage in STAGES if module == stage or module.startswith(stage + ".")), None)


def test_the_graph_reader_sees_kayan_imports_and_finds_a_cycle():
    graph = _import_graph()
    assert "kayan.data.schemes" in graph["kayan.evaluation.metrics"]
    assert "kayan.evaluation.metrics" in graph["kayan.evaluation.scoring"]  # from kayan.evaluation import metrics
    assert "kayan.training.seeds" in graph["kayan.cli"]  # imported inside the train command
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    guarded = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kayan.cli\ntry:\n    import kayan.errors\n"
               "except ImportError:\n    import kayan.atomic\ndef f():\n    with x:\n        from kayan import metrics\n"
               "class C:\n    def g(self):\n        import kayan.run\n")
    assert [ast.unparse(n) for n in _imports(ast.parse(guarded).body)] == [
        "from typing import TYPE_CHECKING", "import kayan.errors", "import kayan.atomic", "from kayan import metrics",
        "import kayan.run"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_kayan_has_no_import_cycle():  # function-local imports included
    cycle = _cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_each_stage_imports_only_the_stages_before_it():
    later = [f"{module} imports {target}" for module, targets in _import_graph().items() if _stage(module)
             for target in targets if _stage(target) not in (None, _stage(module), *STAGES[_stage(module)])]
    assert not later
    assert {_module_name(p) for p in KAYAN.glob("*/__init__.py")} == set(STAGES)  # every subpackage is a stage


def test_shared_top_level_modules_import_no_stage():
    graph = _import_graph()
    shared = {module for module in graph if _stage(module) is None} - SHELLS
    assert {"kayan", "kayan.config", "kayan.checks", "kayan.errors", "kayan.run", "kayan.outputs"} <= shared
    assert SHELLS <= set(graph) and "kayan.data.corpora" in graph["kayan.cli"]  # the shells are seen, and import stages
    reaching = [f"{module} imports {target}" for module in sorted(shared) for target in sorted(graph[module]) if _stage(target)]
    assert not reaching


def test_kayan_imports_each_name_from_the_module_that_defines_it():
    """Not through a package's lazy exports, which would hide the dependency from the graph above."""
    defined = {}  # package -> the names its __init__ itself assigns or imports (kayan.serve imports its API)
    for init in KAYAN.rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        defined[_module_name(init)] = ({t.id for node in body if isinstance(node, ast.Assign) for t in ast.walk(node)
                                        if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
                                       | {a.asname or a.name for node in body if isinstance(node, ast.ImportFrom) for a in node.names})
    modules = {_module_name(p) for p in KAYAN.rglob("*.py")}
    through_package = [f"{_module_name(path)}: from {name.rpartition('.')[0]} import {name.rpartition('.')[2]}"
                       for path in KAYAN.rglob("*.py") for name in _imported_names(path)
                       if name.rpartition(".")[0] in defined and name not in modules
                       and name.rpartition(".")[2] not in defined[name.rpartition(".")[0]]]
    assert not through_package


def test_function_local_imports_of_kayan_are_only_the_commands_and_say_why():
    """Only cli's commands import Kayan modules inside functions (so `kayan --help`, `kayan data` and
    `kayan evaluate --predictions` load no torch), each with a comment saying what it keeps out, and so do
    the library functions of `kayan evaluate` and `kayan compare` (kayan.evaluation.systems: a model, not a
    predictions file, loads torch), and archive tagging (kayan.inference.bulk: the parent of `--workers N`
    never loads the model, its workers do); and the console script's entry point, kayan.__main__, whose one
    job is importing kayan.cli where Ctrl-C is caught."""
    local = []
    for path in KAYAN.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in _imports(function.body):
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    if any(name == "kayan" or name.startswith("kayan.") for name in names):
                        local.append((_module_name(path), "#" in lines[node.lineno - 1]))
    assert local and {module for module, _ in local} == {"kayan.cli", "kayan.__main__", "kayan.evaluation.systems",
                                                                  "kayan.inference.bulk"} and all(c for _, c in local)


@pytest.mark.parametrize("package", ["kayan", *STAGES])
def test_a_package_exports_names_its_modules_define_and_no_module_name(package):
    imported = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(imported.__path__)}
    assert not set(imported.__all__) & submodules  # `kayan.training.tuning` stays the module once imported
    for name in imported.__all__:
        assert getattr(imported, name) is not None and name in dir(imported)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        getattr(imported, "nothing")
