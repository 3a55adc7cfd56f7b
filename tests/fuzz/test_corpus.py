"""Replay the committed fuzz corpus through both frame paths (C and pure Python), in ``make test``.

Every input must run through its target without an exception other than the
protocol errors the parsers are meant to raise (which the targets catch
themselves), and the C accelerator must give exactly what the pure-Python
reference gives. A few hundred random inputs per target run under hypothesis
too, through the same harness functions the fuzzer uses.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import C, TARGETS, frame_path, fuzz_differential

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def corpus(parser: str) -> list[tuple[str, bytes]]:
    directory = os.path.join(CORPUS, parser)
    inputs = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as file:
            inputs.append((name, file.read()))
    return inputs


def test_speedups_are_there_when_required() -> None:
    """The differential half means something only with the C extension built."""
    if os.environ.get("WSIO_REQUIRE_SPEEDUPS", "") not in ("", "0"):
        assert C is not None


@pytest.mark.parametrize("parser", sorted(TARGETS))
def test_corpus_is_committed_and_small(parser: str) -> None:
    inputs = corpus(parser)
    assert 10 <= len(inputs) <= 300, len(inputs)
    assert sum(len(data) for _, data in inputs) <= 2 * 1024 * 1024


@pytest.mark.parametrize("path", ["c", "py"])
@pytest.mark.parametrize("parser", sorted(TARGETS))
def test_corpus_replays_on_both_paths(parser: str, path: str) -> None:
    target = TARGETS[parser]
    with frame_path(path):
        for name, data in corpus(parser):
            try:
                target(data)
            except Exception as exc:  # noqa: BLE001 - reported with the input's name
                raise AssertionError(f"{parser}/{name} on the {path} path: {exc!r}") from exc


@pytest.mark.parametrize("parser", ["frames", "differential"])
def test_corpus_gives_the_same_results_in_c_and_python(parser: str) -> None:
    for name, data in corpus(parser):
        try:
            fuzz_differential(data)
        except AssertionError as exc:
            raise AssertionError(f"{parser}/{name}: {exc}") from exc


@pytest.mark.parametrize("parser", sorted(TARGETS))
def test_random_inputs(parser: str) -> None:
    """The hypothesis fallback of the fuzzer, briefly: random bytes through each target."""
    target = TARGETS[parser]

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=600))
    def check(data: bytes) -> None:
        target(data)

    check()
