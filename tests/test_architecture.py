"""The house rules that keep the code readable, checked on the source itself:
imports go down the layers (CONTRIBUTING.md), no import cycle, no private name taken
from another module (except the speed module `_kernels`), no dispatch on class-name
strings, the engine layer's size budget, and short optimizer updates."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinygrad_mnist"
SPEED_MODULE = "tinygrad_mnist._kernels"
ENGINE_BUDGET = 3200  # non-blank lines of every layer-1 module (CONTRIBUTING.md)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` statement reads from."""
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if not MODULES.get(importer, Path()).name == "__init__.py":
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def type_checking_only(tree: ast.AST):
    """The nodes under `if TYPE_CHECKING:`, which never run (imports for annotations)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                yield from ast.walk(statement)


def imports(name: str, path: Path):
    """(imported module, names imported from it, line) for every import in the file that
    can run, wherever it stands (inside functions too; not under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = set(map(id, type_checking_only(tree)))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            yield resolve(name, node), [a.name for a in node.names], node.lineno


def package_edges(name: str, path: Path):
    """The package modules that module `name` imports (a `from . import x` of a
    submodule counts as importing that submodule)."""
    for module, names, _ in imports(name, path):
        if module == "__future__":
            continue
        for target in [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES] or [module]:
            if target in MODULES and target != name:
                yield target


# The layers of CONTRIBUTING.md, by the first name under the package; anything not
# listed is the app (4), the package itself re-exports everything (5). The compiler
# (jit) sits between the library it compiles and the models.
LAYERS = {
    "_kernels": 0,
    **dict.fromkeys(["autograd", "tensor", "mixin", "ops", "gradcheck", "dtypes", "device",
                     "random", "creation", "functions"], 1),
    **dict.fromkeys(["nn", "optim", "serialization", "vision", "utils", "viz", "atomic",
                     "errors", "data"], 2),
    "jit": 2.5, "threads": 2.5,
    "models": 3,
}
# `data/` reads and checks files and images: NumPy (and PIL), never the engine.
DATA_MAY_IMPORT = ("tinygrad_mnist.data", "tinygrad_mnist.atomic")


def layer(module: str) -> float:
    parts = module.split(".")
    return 5 if len(parts) == 1 else LAYERS.get(parts[1], 4)


def upward_imports(name: str, path: Path):
    """(line, imported module) for each import of a higher layer (`__version__` from the
    package aside), and each import of anything but data and the writer by `data/`."""
    for module, names, line in imports(name, path):
        if not module.startswith("tinygrad_mnist"):
            continue
        targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES] or [module]
        for target in targets:
            if target == "tinygrad_mnist" and names == ["__version__"]:
                continue
            if layer(target) > layer(name) or (
                    name.startswith("tinygrad_mnist.data")
                    and not target.startswith(DATA_MAY_IMPORT)):
                yield line, target


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    found = [f"line {line}: {target}" for line, target in upward_imports(name, MODULES[name])]
    assert not found, f"{name} (layer {layer(name)}) imports above its layer: {found}"


def test_the_package_has_no_import_cycle():
    graph = {name: set(package_edges(name, path)) for name, path in MODULES.items()}
    # A package's __init__ runs before its submodules, so a submodule importing its own
    # package's __init__ (or an ancestor's) is no cycle of modules: drop those edges.
    graph = {name: {t for t in targets if not name.startswith(t + ".")}
             for name, targets in graph.items()}
    done, active, cycles = set(), [], []

    def visit(node):
        if node in active:
            cycles.append(active[active.index(node):] + [node])
            return
        if node in done:
            return
        active.append(node)
        for target in sorted(graph[node]):
            visit(target)
        active.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_app_lives_in_its_own_package():
    """The framework at the package root, the training app under `app/`."""
    app_modules = {"cli", "config", "train", "inference", "predict", "report", "metrics",
                   "plots", "export", "serve", "sweep"}
    assert not app_modules & {p.stem for p in PACKAGE.iterdir()}
    assert app_modules <= {p.stem for p in (PACKAGE / "app").iterdir()}


def test_importing_the_package_works_in_a_fresh_interpreter():
    subprocess.run([sys.executable, "-c", "import tinygrad_mnist, tinygrad_mnist.app.cli"],
                   check=True, cwd=ROOT)


def test_importing_the_package_loads_neither_the_compiler_nor_the_app():
    code = ("import sys, tinygrad_mnist as tg; loaded = sorted(m for m in sys.modules if "
            "m.startswith(('tinygrad_mnist.jit', 'tinygrad_mnist.app')));"
            " print(loaded); print(tg.jit.__name__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                         capture_output=True, text=True).stdout.split("\n")
    assert out[0] == "[]", f"import tinygrad_mnist loaded {out[0]}"
    assert out[1] == "tinygrad_mnist.jit"        # and tg.jit loads it when asked


def private_uses(name: str, path: Path):
    """Private names that `path` takes from the package's other modules: imported by
    name, or read as an attribute of a name it imported."""
    imported = {}
    for module, names, line in imports(name, path):
        if module == "__future__":
            continue
        if not module.startswith("tinygrad_mnist"):
            continue
        for n in names:
            if (n.startswith("_") and not n.startswith("__") and module != SPEED_MODULE
                    and f"{module}.{n}" != SPEED_MODULE):
                yield f"{path.name}:{line} imports {n} from {module}"
            imported[n] = module
        if not names:
            imported[module.split(".")[0]] = module
    imported = {n: m for n, m in imported.items() if m.startswith("tinygrad_mnist")}
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and imported[node.value.id] != SPEED_MODULE):
            yield f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}"


@pytest.mark.parametrize("path", list(MODULES.values()) + BENCHMARKS,
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_taken_from_another_module(path):
    name = module_name(path) if path.is_relative_to(PACKAGE) else path.stem
    assert list(private_uses(name, path)) == []


def test_no_dispatch_on_class_name_strings():
    """No `type(x).__name__ == ...`, `... in NAMES` or `TABLE[cls.__name__]` lookups:
    dispatch is by class (isinstance, or a dict keyed by the class)."""
    found = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) or (isinstance(node, ast.Subscript)
                                                 and isinstance(node.ctx, ast.Load)):
                inner = [n for n in ast.walk(node) if isinstance(n, ast.Attribute)
                         and n.attr == "__name__"]
                if inner:
                    found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_the_engine_layer_keeps_its_size_budget():
    engine = [path for name, path in MODULES.items() if layer(name) == 1]
    assert PACKAGE / "autograd.py" in engine and PACKAGE / "ops" / "__init__.py" in engine
    lines = sum(1 for path in engine for line in path.read_text().splitlines() if line.strip())
    assert lines <= ENGINE_BUDGET, (
        f"the engine layer ({len(engine)} modules: autograd, tensor, mixin/, ops/, ...) has "
        f"{lines} non-blank lines, over its budget of {ENGINE_BUDGET}: move speed helpers "
        f"to _kernels.py, or compose the op from others")


def test_the_checks_above_can_fail(tmp_path):
    """The AST checks find what they look for (a check that cannot fail proves nothing)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from tinygrad_mnist.ops import _secret\nfrom tinygrad_mnist import ops\n"
                   "ops._pair(1)\nfrom tinygrad_mnist._kernels import ones\n"
                   "if TYPE_CHECKING:\n    from tinygrad_mnist.tensor import Tensor\n"
                   "if True:\n    from tinygrad_mnist.autograd import Function\n")
    assert len(list(private_uses("bad", bad))) == 2
    assert len(list(upward_imports("tinygrad_mnist.data.bad", bad))) == 4
    assert [t for _, t in upward_imports("tinygrad_mnist._kernels", bad)] == [
        "tinygrad_mnist.ops", "tinygrad_mnist.ops", "tinygrad_mnist.autograd"]


UPDATE_BUDGET = 25  # lines of an optimizer's per-piece update, signature and docstring included


@pytest.mark.parametrize("path", sorted((PACKAGE / "optim").glob("*.py")), ids=lambda p: p.name)
def test_each_optimizer_update_reads_as_a_short_formula(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "update":
            lines = node.end_lineno - node.lineno + 1
            assert lines <= UPDATE_BUDGET, (
                f"{path.name}: update() is {lines} lines, over {UPDATE_BUDGET}: keep the "
                f"formula there and move loops, pieces and scratch to the Optimizer base")
