"""The shape of wsio's imports: the core stands alone, and no modules import each other in a loop.

The module graph is read from the source with ``ast``: the imports that run
when a module is imported, i.e. those at module level, outside functions and
outside ``if TYPE_CHECKING:`` blocks. An import of a package that holds the
importing module isn't an edge (Python has imported it already).
"""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys
from typing import Callable

import pytest

import wsio

PACKAGE = pathlib.Path(wsio.__file__).parent


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run at import time: not in functions, not under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            found += _runtime_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    found += _runtime_imports(block)
    return found


def _every_import(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions and under TYPE_CHECKING too."""
    module = ast.Module(body=body, type_ignores=[])
    return [node for node in ast.walk(module) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _graph(imports: Callable[[list[ast.stmt]], list[ast.Import | ast.ImportFrom]] = _runtime_imports) -> dict[str, set[str]]:
    """Module -> the wsio modules it imports (by default: at import time)."""
    graph = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        ancestors = {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 1)}
        edges = set()
        for node in imports(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = ".".join(package.split(".")[: package.count(".") + 2 - node.level])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            edges |= {target for target in targets if target in MODULES and target != name and target not in ancestors}
        graph[name] = edges
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_graph_is_read() -> None:
    assert "wsio.protocol.frames" in GRAPH["wsio.protocol.machine"]
    assert "wsio.protocol.errors" in GRAPH["wsio.protocol.frames"]
    assert "wsio.asyncio.connection" in GRAPH["wsio.asyncio.server"]
    assert "wsio.pubsub.backend" in GRAPH["wsio.pubsub.hub"]
    assert len(GRAPH) > 60


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself


def test_the_core_imports_only_the_core() -> None:
    for module, imported in GRAPH.items():
        if module.startswith("wsio.protocol"):
            outside = {other for other in imported if not other.startswith("wsio.protocol.")}
            # wsio.version: the version string, for the default User-Agent and Server headers.
            assert outside <= {"wsio.version", "wsio.protocol._speedups"}, (module, outside)


def test_sync_never_imports_asyncio() -> None:
    # What both share without I/O is in wsio/_server_common.py and wsio/_client_common.py.
    graph = _graph(_every_import)
    for module, imported in graph.items():
        if module == "wsio.sync" or module.startswith("wsio.sync."):
            assert not {other for other in imported if other == "wsio.asyncio" or other.startswith("wsio.asyncio.")}, module
    assert "wsio._server_common" in graph["wsio.sync.server"] and "wsio._client_common" in graph["wsio.sync.client"]


# In a fresh interpreter, load the package ``wsio`` as an empty shell (its
# __init__, which imports everything, doesn't run), import one module, and
# list the wsio modules that came with it.
_ALONE = """
import importlib, importlib.util, json, sys, types
spec = importlib.util.find_spec("wsio")
shell = types.ModuleType("wsio")
shell.__path__ = list(spec.submodule_search_locations)
sys.modules["wsio"] = shell
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name in sys.modules if name.startswith("wsio."))))
"""


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.startswith("wsio.protocol")))
def test_each_core_module_imports_without_the_rest_of_wsio(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", _ALONE, module], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert module in loaded
    outside = {name for name in loaded if not name.startswith("wsio.protocol")}
    assert outside <= {"wsio.version", "wsio.protocol._speedups"}, outside
