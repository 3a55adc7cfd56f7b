"""Run one fuzz target: ``python tests/fuzz/run.py PARSER SECONDS``.

PARSER is one of ``request``, ``response``, ``frames``, ``differential`` (or
``all``, which runs each for SECONDS in turn). With atheris installed the
target runs under libFuzzer, coverage-guided over the instrumented pure-Python
code of wsio (the C accelerator is not instrumented; the differential target
compares it with the Python reference on every input). The run starts from the
committed corpus in ``tests/fuzz/corpus/PARSER/`` and the hand-written seeds,
works in a scratch directory, and at the end writes back a minimized corpus:
a smallest set of inputs that makes every line-to-line transition of wsio's
Python code that the whole run made (greedy set cover), capped in count and
size. ``--minimize DIR`` only does that last step, from the inputs in DIR. A crash leaves ``crash-*`` in the
current directory and exits non-zero.

Without atheris, ``--hypothesis`` (or its absence) runs the same target under
hypothesis with random bytes for SECONDS instead: no coverage guidance, so
weaker, but the same assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

#: Longest input the fuzzer makes: enough for every header limit in the small-limit mode and many frames.
MAX_LEN = 4096
#: What a committed corpus may hold.
MAX_FILES = 300
MAX_BYTES = 2 * 1024 * 1024


def corpus_dir(parser: str) -> str:
    return os.path.join(HERE, "corpus", parser)


def read_corpus(directory: str) -> list[bytes]:
    if not os.path.isdir(directory):
        return []
    inputs = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as file:
            inputs.append(file.read())
    return inputs


def write_corpus(directory: str, inputs: list[bytes]) -> None:
    """Replace ``directory``'s files by ``inputs``, each named by its hash (stable names, small diffs)."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    for data in inputs:
        with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as file:
            file.write(data)


def arcs_covered(target, data: bytes) -> frozenset[tuple[str, int, int]]:
    """The line-to-line transitions in wsio that ``target(data)`` makes, on the pure-Python frame path.

    A tracer (slow; for minimizing only). Arcs tell branches apart where lines
    don't, and the Python path runs the frame parser's lines that the C one hides.
    """
    from tests.fuzz.harness import frame_path

    covered: set[tuple[str, int, int]] = set()

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        filename = frame.f_code.co_filename
        if "/wsio/" not in filename:
            return None
        previous = -frame.f_code.co_firstlineno

        def local(frame, event, arg):  # type: ignore[no-untyped-def]
            nonlocal previous
            if event == "line":
                covered.add((filename, previous, frame.f_lineno))
                previous = frame.f_lineno
            return local

        return local

    with frame_path("py"):
        sys.settrace(tracer)
        try:
            target(data)
        except Exception:  # a crash was reported by the fuzzer already; keep the input anyway
            pass
        finally:
            sys.settrace(None)
    return frozenset(covered) | outcome_features(target, data)


def outcome_features(target, data: bytes) -> frozenset[tuple[str, Any]]:
    """For the frame targets, what the connection ended with counts too: state, failure, close code, kinds of events."""
    from tests.fuzz import harness

    if target not in (harness.fuzz_frames, harness.fuzz_differential) or not data:
        return frozenset()
    try:
        events, _, state, failure, close = harness.outcome(data)
    except Exception:  # noqa: BLE001 - a crash: the arcs keep the input
        return frozenset()
    kinds = tuple(event[0] for event in events[:6])
    return frozenset({("outcome", (data[0] & 0x78, int(state), failure, close and close[0], kinds))})


def minimize(target, inputs: list[bytes]) -> list[bytes]:
    """Greedy set cover: the fewest (and, at equal gain, shortest) inputs reaching every covered arc."""
    unique = sorted(set(inputs), key=len)
    coverage = {data: arcs_covered(target, data) for data in unique}
    remaining = set().union(*coverage.values()) if coverage else set()
    chosen: list[bytes] = []
    total = 0
    while remaining and len(chosen) < MAX_FILES:
        best = max(unique, key=lambda data: (len(coverage[data] & remaining), -len(data)))
        gain = coverage[best] & remaining
        if not gain or total + len(best) > MAX_BYTES:
            break
        chosen.append(best)
        total += len(best)
        remaining -= gain
    return chosen


def seeds(parser: str) -> list[bytes]:
    from tests.fuzz.seeds import SEEDS

    return SEEDS[parser]()


def run_atheris(parser: str, seconds: int, work: str) -> int:
    """Fuzz in a child process (libFuzzer owns its process and exits it); return its exit code."""
    command = [sys.executable, os.path.abspath(__file__), parser, str(seconds), "--atheris-child", work]
    return subprocess.call(command)


def atheris_child(parser: str, seconds: int, work: str) -> None:
    import atheris

    with atheris.instrument_imports(include=["wsio", "tests.fuzz.harness"]):
        from tests.fuzz import harness
    target = harness.TARGETS[parser]
    atheris.Setup(
        [
            sys.argv[0],
            f"-max_total_time={seconds}",
            f"-max_len={MAX_LEN}",
            "-rss_limit_mb=2048",
            "-timeout=10",
            "-print_final_stats=1",
            work,
        ],
        target,
    )
    atheris.Fuzz()


def run_hypothesis(parser: str, seconds: int, work: str) -> int:
    """The fallback without atheris: random bytes and the seeds' mutations under hypothesis, for ``seconds``."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzz import harness

    target = harness.TARGETS[parser]
    start_inputs = read_corpus(work)
    found: list[bytes] = []

    @settings(max_examples=10**9, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=MAX_LEN), st.sampled_from(start_inputs).flatmap(_mutations)))
    def check(data: bytes) -> None:
        if time.monotonic() > stop:
            raise _TimeUp
        target(data)
        if len(found) < 5000:
            found.append(data)

    stop = time.monotonic() + seconds
    try:
        check()
    except _TimeUp:
        pass
    for data in found:
        with open(os.path.join(work, hashlib.sha1(data).hexdigest()), "wb") as file:
            file.write(data)
    return 0


class _TimeUp(Exception):
    pass


def _mutations(data: bytes):  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    return st.tuples(st.integers(0, max(len(data) - 1, 0)), st.binary(max_size=8), st.integers(0, 8)).map(
        lambda t: (data[: t[0]] + t[1] + data[t[0] + t[2] :])[:MAX_LEN]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parser", choices=["request", "response", "frames", "differential", "all"])
    parser.add_argument("seconds", type=int)
    parser.add_argument("--hypothesis", action="store_true", help="use the hypothesis fallback even if atheris is installed")
    parser.add_argument("--minimize", metavar="DIR", help="only minimize: the inputs in DIR, the committed corpus and the seeds")
    parser.add_argument("--atheris-child", metavar="WORK", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.minimize:
        from tests.fuzz import harness

        inputs = read_corpus(args.minimize) + read_corpus(corpus_dir(args.parser)) + seeds(args.parser)
        kept = minimize(harness.TARGETS[args.parser], inputs)
        write_corpus(corpus_dir(args.parser), kept)
        print(f"{args.parser}: {len(inputs)} inputs -> {len(kept)} kept ({sum(map(len, kept))} bytes)")
        return 0
    if args.atheris_child:
        atheris_child(args.parser, args.seconds, args.atheris_child)
        return 0
    names = ["request", "response", "frames", "differential"] if args.parser == "all" else [args.parser]
    for name in names:
        status = fuzz_one(name, args.seconds, args.hypothesis)
        if status:
            return status
    return 0


def fuzz_one(name: str, seconds: int, force_hypothesis: bool) -> int:
    try:
        import atheris  # noqa: F401

        use_atheris = not force_hypothesis
    except ImportError:
        use_atheris = False
        print("atheris is not installed: running the hypothesis fallback (no coverage guidance)", file=sys.stderr)
    work = tempfile.mkdtemp(prefix=f"wsio-fuzz-{name}-")
    try:
        start = read_corpus(corpus_dir(name)) + seeds(name)
        write_corpus(work, start)
        began = time.monotonic()
        status = run_atheris(name, seconds, work) if use_atheris else run_hypothesis(name, seconds, work)
        elapsed = time.monotonic() - began
        from tests.fuzz import harness

        found = read_corpus(work)
        kept = minimize(harness.TARGETS[name], found + start)
        write_corpus(corpus_dir(name), kept)
        size = sum(map(len, kept))
        engine = "atheris" if use_atheris else "hypothesis"
        print(
            f"{name}: {engine} ran {elapsed:.0f}s, exit {status}; corpus {len(found)} inputs -> {len(kept)} kept ({size} bytes)"
        )
        return status
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
