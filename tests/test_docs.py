"""The documentation site: it builds with no warning, its doctests pass, its
internal links resolve, and its code comes only from doctests or from files of
examples/ (which tests/test_examples_*.py run).

The build is the one ``make docs`` runs, into a temporary folder:
``python -m sphinx -W --keep-going -n -b html docs <out>``.
"""

from __future__ import annotations

import html.parser
import inspect
import os
import pathlib
import posixpath
import re
import subprocess
import sys
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
TIMEOUT = 300


def sphinx(builder: str, out: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", builder, str(DOCS), str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": ""},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("html")
    result = sphinx("html", out)
    report = f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, report
    return out


def test_html_builds_without_warnings(html_dir: pathlib.Path) -> None:
    for page in ["index", "getting-started", "faq", "topics/index", "api/index", "migrate/websockets", "changelog"]:
        assert (html_dir / f"{page}.html").is_file(), page


def test_doctests(tmp_path: pathlib.Path) -> None:
    result = sphinx("doctest", tmp_path)
    output = (tmp_path / "output.txt").read_text() if (tmp_path / "output.txt").exists() else ""
    report = f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{output}"
    assert result.returncode == 0, report
    match = re.search(r"^\s*(\d+) tests?$", output, re.MULTILINE)
    assert match and int(match.group(1)) >= 3, report
    assert re.search(r"^\s*0 failures in tests$", output, re.MULTILINE), report


class _Links(html.parser.HTMLParser):
    """The ids and the link targets of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("id", "name"):
            if attributes.get(name) and (name == "id" or tag == "a"):
                self.ids.add(attributes[name])  # type: ignore[arg-type]
        for name in ("href", "src"):
            value = attributes.get(name)
            if value is not None and not (tag == "link" and attributes.get("rel") in ("preconnect", "dns-prefetch")):
                self.targets.append(value)


def _parse(page: pathlib.Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_internal_links(html_dir: pathlib.Path) -> None:
    pages = {page: _parse(page) for page in html_dir.rglob("*.html")}
    assert len(pages) > 10
    broken = []
    checked = 0
    for page, links in pages.items():
        for target in links.targets:
            parts = urllib.parse.urlsplit(target)
            if parts.scheme or parts.netloc or target.startswith(("mailto:", "javascript:", "data:")):
                continue  # outside the site
            path = urllib.parse.unquote(parts.path)
            if path.startswith("/"):
                broken.append(f"{page.relative_to(html_dir)}: absolute link {target}")
                continue
            resolved = page if not path else pathlib.Path(posixpath.normpath(page.parent / path))
            if resolved.is_dir():
                resolved = resolved / "index.html"
            if html_dir not in resolved.parents or not resolved.exists():
                broken.append(f"{page.relative_to(html_dir)}: {target} (no such file)")
                continue
            if parts.fragment and resolved.suffix == ".html":
                target_ids = pages[resolved].ids if resolved in pages else _parse(resolved).ids
                if urllib.parse.unquote(parts.fragment) not in target_ids:
                    broken.append(f"{page.relative_to(html_dir)}: {target} (no such anchor)")
                    continue
            checked += 1
    assert not broken, "\n".join(broken)
    assert checked > 500, checked


# Fenced blocks that are directives, not code: code must be a doctest or an included file.
ALLOWED_FENCES = {
    "{toctree}",
    "{eval-rst}",
    "{literalinclude}",
    "{include}",
    "{doctest}",
    "{testcode}",
    "{testoutput}",
    "{note}",
    "{warning}",
    "{image}",
}


def _markdown_pages() -> list[pathlib.Path]:
    return sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda page: str(page.relative_to(DOCS)))
def test_code_is_doctest_or_included(page: pathlib.Path) -> None:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(page.read_text(encoding="utf-8"))
    for token in tokens:
        if token.type == "code_block":
            pytest.fail(
                f"{page.name}:{token.map[0] + 1 if token.map else '?'}: an indented code block; use a doctest or literalinclude"
            )
        if token.type == "fence":
            directive = token.info.split()[0] if token.info.split() else ""
            line = token.map[0] + 1 if token.map else "?"
            assert directive in ALLOWED_FENCES, f"{page.name}:{line}: a ```{token.info} block; use a doctest or literalinclude"
            if directive == "{eval-rst}":
                assert "code-block" not in token.content and "::\n" not in token.content.replace(".. ", ""), f"{page.name}:{line}"


def _included_files() -> set[pathlib.Path]:
    included = set()
    for page in _markdown_pages():
        for match in re.finditer(r"^```\{(?:literalinclude|include)\}\s+(\S+)", page.read_text(encoding="utf-8"), re.MULTILINE):
            included.add((page.parent / match.group(1)).resolve())
    return included


def test_every_example_is_shown() -> None:
    included = _included_files()
    programs = [
        *(EXAMPLES / "faq").glob("*.py"),
        *(EXAMPLES / "faq_websocket_client").glob("*.py"),
        *(EXAMPLES / "docs").glob("*.py"),
    ]
    assert len(programs) > 40
    missing = [str(path.relative_to(ROOT)) for path in programs if path.resolve() not in included]
    assert not missing, f"examples not included in any page: {missing}"
    assert (EXAMPLES / "deployment" / "nginx.conf").resolve() in included


def _names_in(page: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z_][\w.]*)", (DOCS / page).read_text(encoding="utf-8")))


def test_websockets_guide_covers_every_name_and_option() -> None:
    import websockets
    import websockets.asyncio.client
    import websockets.asyncio.server
    import websockets.sync.client
    import websockets.sync.server

    documented = _names_in("migrate/websockets.md")
    source = inspect.getsource(websockets)
    legacy = re.findall(r'^\s+"(\w+)": "\.legacy\.', source, re.MULTILINE)
    assert "WebSocketServerProtocol" in legacy
    names = set(websockets.__all__) | set(legacy)
    for function in (
        websockets.asyncio.server.serve,
        websockets.asyncio.client.connect,
        websockets.sync.server.serve,
        websockets.sync.client.connect,
    ):
        names |= {
            name
            for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind is not parameter.VAR_KEYWORD
        }
    assert not names - documented, sorted(names - documented)


def test_websocket_client_guide_covers_every_name_and_option() -> None:
    import websocket

    documented = _names_in("migrate/websocket-client.md")
    names = {name for name in dir(websocket) if not name.startswith("_") and not inspect.ismodule(getattr(websocket, name))}
    names |= {name for name in dir(websocket.WebSocket) if not name.startswith("_")}
    names |= {name for name in dir(websocket.WebSocketApp) if not name.startswith("_")}
    for function in (
        websocket.WebSocketApp.__init__,
        websocket.WebSocketApp.run_forever,
        websocket.WebSocket.__init__,
        websocket.create_connection,
    ):
        names |= {
            name
            for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) and name not in ("self", "_")
        }
    # The options of WebSocket.connect(), which takes **options: as its docstring lists them.
    names |= set(re.findall(r"^\s{8}(\w+): ", websocket.WebSocket.connect.__doc__ or "", re.MULTILINE))
    assert {"suppress_host", "redirect_limit", "http_no_proxy"} <= names
    assert not names - documented, sorted(names - documented)


def test_performance_page_shows_every_chart() -> None:
    page = (DOCS / "topics" / "performance.md").read_text(encoding="utf-8")
    charts = sorted((ROOT / "bench" / "results").glob("*.png"))
    assert charts
    missing = [chart.name for chart in charts if f"bench/results/{chart.name})" not in page]
    assert not missing, missing
