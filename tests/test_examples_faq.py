"""Run every program in examples/faq/: each must exit 0 and say what it did.

Each program answers one asyncio question of the websockets FAQ with the
FAQ's own code and ``import wsio as websockets``; it starts its own server and
client on 127.0.0.1 and checks the outcome with asserts.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

FAQ = pathlib.Path(__file__).resolve().parent.parent / "examples" / "faq"
EXAMPLES = sorted(FAQ.glob("*.py"))
TIMEOUT = 30  # seconds; each program takes about one, the slowest about four

# Programs that fail because of a wsio bug, not because of the program: they
# stay as the FAQ has them. Strict: once the bug is fixed, the XPASS fails the
# run, and the entry must go.
KNOWN_BUGS: dict[str, str] = {
    # "program.py": "what wsio gets wrong",
}


def requirements(example: pathlib.Path) -> list[str]:
    """Modules named on a ``# requires: a, b`` line of the program."""
    match = re.search(r"^# requires: ([\w., ]+)", example.read_text(), re.MULTILINE)
    if match is None:
        return []
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


def test_there_are_examples() -> None:
    assert EXAMPLES, f"no program in {FAQ}"


def test_known_bugs_name_existing_examples() -> None:
    names = {example.name for example in EXAMPLES}
    assert set(KNOWN_BUGS) <= names, set(KNOWN_BUGS) - names


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(
            example,
            id=example.name,
            marks=[pytest.mark.xfail(reason=KNOWN_BUGS[example.name], strict=True)] if example.name in KNOWN_BUGS else [],
        )
        for example in EXAMPLES
    ],
)
def test_example(example: pathlib.Path) -> None:
    for module in requirements(example):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{example.name} needs {module}, which isn't installed (make install installs it)")
    try:
        result = subprocess.run(
            [sys.executable, str(example)],
            cwd=FAQ,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{example.name} still running after {TIMEOUT} s\nstdout:\n{exc.stdout}\nstderr:\n{exc.stderr}")
    report = f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert result.stdout.strip(), report
