"""Sphinx configuration of the wsio documentation (furo theme, MyST Markdown pages)."""

from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "src"))

import wsio  # noqa: E402

project = "wsio"
author = "the wsio authors"
copyright = "the wsio authors"
release = wsio.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"wsio {release}"
html_static_path: list[str] = []

# autodoc: members in source order, signatures without the long type hints
# (they stay in the descriptions); Google-style "Args:" sections via napoleon.
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Doctests compare with ELLIPSIS (``<function f at ...>``).
import doctest  # noqa: E402

doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1

nitpicky = True
# Names that cannot resolve offline (no intersphinx: the build has no network).
nitpick_ignore_regex = [
    ("py:.*", r"(asyncio|ssl|socket|logging|http|typing|collections|concurrent|threading|selectors|zlib|os|enum|functools|urllib|multiprocessing|signal|uuid)(\..*)?"),
    ("py:.*", r"(str|bytes|bytearray|memoryview|int|float|bool|None|object|dict|list|tuple|set|type|Exception|BaseException|OSError|ValueError|TypeError|RuntimeError|KeyError|TimeoutError|ConnectionError|EOFError|NotImplemented|Ellipsis)"),
    ("py:.*", r"redis(\..*)?"),
]
# Targets in docstrings of files other engineers are editing; to be fixed there.
nitpick_ignore: list[tuple[str, str]] = [
    # src/wsio/protocol/machine.py, Protocol.send_message_parts: an undocumented constant.
    ("py:data", "wsio.protocol.frames.LARGE_PAYLOAD"),
    # A private mixin named in ServerConnection's bases; its respond() and reject() are documented there.
    ("py:class", "wsio._server_common.Responder"),
    # The private mixin of what both server connections do alike (the handshake hooks, log lines).
    ("py:class", "wsio._server_common.ServerConnectionBase"),
    ("py:class", "wsio._server_common.ServerBase"),
]


# Docstrings name objects the way their own module sees them: ``ConnectionClosed``
# in ``wsio/sync/connection.py``, ``wsio.asyncio.client.connect`` for what this
# site documents as ``wsio.connect``. When Sphinx can't find such a target, look
# the name up in Python (in the module of the object whose docstring it is, then
# as a dotted path) and link to the documented name of the same object. Only
# objects this site documents can be reached this way, so a reference to an
# undocumented object still fails the build.
import importlib  # noqa: E402
import inspect  # noqa: E402
from typing import Any  # noqa: E402


def _lookup(path: str) -> Any:
    """The object a dotted path names, or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def _identity(obj: Any) -> Any:
    """What makes an object the same object (plain values such as ints are not)."""
    if obj is None or isinstance(obj, (int, float, str, bytes)) and not hasattr(obj, "_value_"):
        return None
    return id(obj)


_DOCUMENTED: dict[int, str] = {}


def _documented(env: Any) -> dict[int, str]:
    if not _DOCUMENTED:
        for name in env.get_domain("py").objects:
            key = _identity(_lookup(name))
            if key is not None:
                # Prefer the shortest name: wsio.serve over wsio.asyncio.serve.
                if key not in _DOCUMENTED or len(name) < len(_DOCUMENTED[key]):
                    _DOCUMENTED[key] = name
    return _DOCUMENTED


def _resolve_by_identity(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    scopes = []
    module, cls = node.get("py:module"), node.get("py:class")
    if module and cls:
        scopes.append(f"{module}.{cls}")
        owner = _lookup(f"{module}.{cls}")
        if owner is not None and getattr(owner, "__module__", None):
            scopes.append(owner.__module__)
    if module:
        scopes.append(module)
    scopes += ["wsio", "wsio.protocol", ""]
    documented = _documented(env)
    for scope in scopes:
        obj = _lookup(f"{scope}.{target}" if scope else target)
        name = documented.get(_identity(obj)) if obj is not None else None
        if name is not None:
            py = env.get_domain("py")
            return py.resolve_xref(env, node["refdoc"], app.builder, "obj", name, node, contnode)
    return None


def _clear_cache(app: Any, env: Any, *args: Any) -> None:
    _DOCUMENTED.clear()


def _join_wrapped_names(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Join an "Args:" entry whose list of names wraps onto the next line.

    wsio docstrings document several parameters at once (``ping_interval,
    ping_timeout, ...: as for serve``); when the names fill more than a line,
    napoleon would take the first line for a parameter of its own.
    """
    i = 0
    while i < len(lines) - 1:
        line, following = lines[i], lines[i + 1]
        indent = len(line) - len(line.lstrip())
        if (
            line.rstrip().endswith(",")
            and ":" not in line
            and indent > 0
            and len(following) - len(following.lstrip()) == indent
        ):
            lines[i : i + 2] = [line.rstrip() + " " + following.strip()]
            continue
        i += 1


# asyncio.Protocol's callbacks: the event loop calls them, applications don't.
_TRANSPORT_CALLBACKS = frozenset(
    name for name in dir(__import__("asyncio").BufferedProtocol) if not name.startswith("_")
) | frozenset(name for name in dir(__import__("asyncio").Protocol) if not name.startswith("_"))


def _skip_transport_callbacks(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    if what == "class" and name in _TRANSPORT_CALLBACKS:
        return True
    return None


def setup(app: Any) -> None:
    app.connect("autodoc-skip-member", _skip_transport_callbacks)
    app.connect("autodoc-process-docstring", _join_wrapped_names, priority=400)  # before napoleon
    app.connect("missing-reference", _resolve_by_identity)
    app.connect("env-updated", _clear_cache)
