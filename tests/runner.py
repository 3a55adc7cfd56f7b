"""``make test``: every test, spread over the machine's cores, on every CPython found.

``python tests/runner.py [--jobs N] [--only NAME,...] [--list]``

The suite is cut into jobs, each one pytest process (or the preparation of
another CPython's venv, tests/versions.py) with its output in
``reports/tests/<job>.log`` and its results in ``reports/tests/<job>.xml``:

- the three Autobahn runs, each its own job: the two client runs mostly wait
  for the fuzzing server, so they count as a quarter of a core;
- the soak (two minutes), the hostile tests (on each path), the core and both
  I/O layers (on each path), the rest;
- on each other CPython from 3.10 up (tests/versions.py): tests/protocol,
  tests/asyncio and tests/sync with the C accelerator and on the pure-Python
  path, in ``.venvs/3.X`` with wsio installed from its wheel;
  ``tests/test_build.py`` checks those wheels, so it waits for them.

Jobs start, longest first, while the cores they count for aren't all taken
(``--jobs``, the number of cores by default). Tests that can't share the
machine with each other at the same moment carry the same ``alone`` tag: the
two hostile runs (a server's latency and memory, watched) never overlap. The
soak needs the whole machine (a core for its server, one for its load): it
runs first, alone.

Each job's pytest summary line is printed as it ends (with the failures
section of a failed job); the output ends with the jobs' table and one
pytest-style line with the counts of all of them. The exit status is 1 if
any job failed (or no other CPython was found), 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import versions  # noqa: E402

ROOT = versions.ROOT
OUT = ROOT / "reports" / "tests"
PYTHON = sys.executable

#: The C path must really be the C path: a broken build fails, not skips.
C_ENV = {"WSIO_REQUIRE_SPEEDUPS": "1"}
PY_ENV = {"WSIO_NO_SPEEDUPS": "1"}
CORE = ["tests/protocol", "tests/asyncio", "tests/sync"]


@dataclasses.dataclass
class Job:
    name: str
    args: list[str]  # a pytest command line after "python -m pytest", or a command with python=None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    python: str | None = PYTHON  # None: args is the whole command
    cores: float = 1.0  # how much of a core it keeps busy
    minutes: float = 1.0  # expected wall time, for the order (longest first)
    after: list[str] = dataclasses.field(default_factory=list)  # jobs that must have ended first
    alone: str = ""  # jobs with the same tag never run at the same time
    exclusive: bool = False  # runs first, with no other job beside it
    # Filled while running:
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    elapsed: float = 0.0
    cpu: float = 0.0  # user + system seconds of the job and the children it waited for
    returncode: int | None = None
    summary: str = ""

    @property
    def log(self) -> Path:
        return OUT / f"{self.name}.log"

    def command(self) -> list[str]:
        if self.python is None:
            return self.args
        return [
            self.python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={OUT / (self.name + '.xml')}",
            *self.args,
        ]


def jobs_for(pythons: dict[str, str]) -> list[Job]:
    autobahn = "tests/autobahn/test_autobahn.py"
    # The default CPython: everything. What a job below doesn't name runs in "rest".
    taken = [
        "tests/autobahn",
        "tests/asgi/test_autobahn_asgi.py",
        "tests/soak",
        "tests/hostile",
        *CORE,
        "tests/interop",
        "tests/fuzz",
        "tests/test_build.py",
        "tests/test_examples_websocket_client.py",
        "tests/pubsub",
    ]
    jobs = [
        # Every case against the asyncio server; the callback API server (its C read path) after it.
        Job("autobahn-server", [f"{autobahn}::test_server", f"{autobahn}::test_server_callback_api"], C_ENV, minutes=8),
        Job("autobahn-client-asyncio", [f"{autobahn}::test_client[asyncio]"], C_ENV, cores=0.25, minutes=9),
        Job("autobahn-client-sync", [f"{autobahn}::test_client[sync]"], C_ENV, cores=0.25, minutes=9),
        # The same 517 cases against a Starlette echo on uvicorn with wsio's engine (tests/asgi).
        Job("autobahn-asgi", ["tests/asgi/test_autobahn_asgi.py"], C_ENV, minutes=7),
        # The soak's server and load generator need a core each to reach 2,000
        # connections (and the same allocator high-water mark in warm-up and soak).
        Job("soak", ["tests/soak"], C_ENV, cores=2, minutes=2.5, exclusive=True),
        Job("c-core", CORE, C_ENV, minutes=2),
        Job("c-hostile", ["tests/hostile"], C_ENV, minutes=2.5, alone="measured"),
        Job("c-interop-fuzz", ["tests/interop", "tests/fuzz", "tests/test_examples_websocket_client.py"], C_ENV, minutes=2),
        # Mostly waits (browsers, servers, timeouts): about 0.4 of a core over its 5 minutes.
        Job("c-rest", ["tests", *(f"--ignore={path}" for path in taken)], C_ENV, cores=0.5, minutes=5),
        # The hub against real redis-server processes: one, and a 6-node cluster (most of it waits on Redis).
        Job("c-pubsub", ["tests/pubsub"], C_ENV, cores=0.5, minutes=2),
        Job("py-core", CORE, PY_ENV, minutes=1.5),
        Job("py-hostile", ["tests/hostile"], PY_ENV, minutes=2.5, alone="measured"),
        Job("py-interop-fuzz", ["tests/interop", "tests/fuzz", "tests/test_examples_websocket_client.py"], PY_ENV, minutes=1.5),
    ]
    # Lint (ruff's rule set is in pyproject.toml): seconds, and a red run names the line.
    jobs.append(
        Job(
            "ruff", [PYTHON, "-m", "ruff", "check", "--output-format", "concise", str(ROOT)], python=None, cores=0.25, minutes=0.1
        )
    )
    # The code stays as `ruff format` writes it (line-length in pyproject.toml); a red run lists the files.
    formatted = [str(ROOT / folder) for folder in ("src", "tests", "bench", "examples")]
    jobs.append(Job("ruff-format", [PYTHON, "-m", "ruff", "format", "--check", *formatted], python=None, cores=0.25, minutes=0.1))
    # Types: mypy --strict on src/wsio (its settings are in pyproject.toml), a few seconds.
    jobs.append(
        Job("mypy", [PYTHON, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")], python=None, cores=1, minutes=0.2)
    )
    for version, python in pythons.items():
        prepare = f"prepare-{version}"
        jobs.append(
            Job(prepare, [PYTHON, str(ROOT / "tests" / "versions.py"), "prepare", version], python=None, cores=0.5, minutes=1)
        )
        venv_python = str(versions.venv_python(version))
        # --continue-on-collection-errors: a module that doesn't compile on this
        # version fails, and the others still run.
        core = [*CORE, "--continue-on-collection-errors"]
        jobs.append(Job(f"{version}-c", core, C_ENV, python=venv_python, minutes=2, after=[prepare]))
        jobs.append(Job(f"{version}-py", core, PY_ENV, python=venv_python, minutes=1.5, after=[prepare]))
    # The wheels of the other versions are checked by test_build.py: after they are built.
    jobs.append(
        Job(
            "build",
            ["tests/test_build.py"],
            {**C_ENV, "WSIO_VERSION_WHEELS_READY": "1"},
            minutes=2,
            after=[f"prepare-{v}" for v in pythons],
        )
    )
    return jobs


COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b")


def pytest_summary(text: str) -> str:
    """The last line of pytest's output that gives counts ("3 failed, 120 passed in 9.1s")."""
    for line in reversed(text.splitlines()):
        stripped = line.strip("= ").strip()
        if COUNT.search(stripped) and re.search(r" in [\d.]+s", stripped):
            return stripped
        if stripped.startswith("no tests ran"):
            return stripped
    return ""


def failure_report(text: str) -> str:
    """The failures/errors sections and the short summary of a pytest output, for the console."""
    start = min((i for i in (text.find("= ERRORS ="), text.find("= FAILURES =")) if i >= 0), default=-1)
    if start < 0:
        start = max(0, len(text) - 6000)
    else:
        start = text.rfind("\n", 0, start) + 1
    report = text[start:]
    return report if len(report) <= 40000 else report[:20000] + "\n[...]\n" + report[-20000:]


def run(jobs: list[Job], capacity: float) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # Longest first, counting what waits for a job (a venv's preparation comes early).
    waiting = {job.name: sum(other.minutes for other in jobs if job.name in other.after) for job in jobs}
    pending = sorted(jobs, key=lambda job: (not job.exclusive, -(job.minutes + waiting[job.name])))
    running: list[Job] = []
    done: dict[str, Job] = {}
    t0 = time.monotonic()

    def can_start(job: Job) -> bool:
        if any(name not in done for name in job.after):
            return False
        if job.alone and any(other.alone == job.alone for other in running):
            return False
        if any(other.exclusive for other in running):
            return False
        if job.exclusive:
            return not running
        # Start while a core isn't all taken: many jobs wait on sockets and
        # child processes part of the time, so the machine takes a little more.
        return sum(other.cores for other in running) < capacity - 0.01

    try:
        _loop(pending, running, done, can_start, t0)
    finally:
        for job in running:  # interrupted (Ctrl-C, SIGTERM): take our children with us
            if job.process is not None and job.process.poll() is None:
                job.process.terminate()
        for job in running:
            if job.process is not None:
                try:
                    job.process.wait(10)
                except subprocess.TimeoutExpired:
                    job.process.kill()


def _loop(pending: list[Job], running: list[Job], done: dict[str, Job], can_start: Callable[[Job], bool], t0: float) -> None:
    last_status = t0
    while pending or running:
        for job in list(pending):
            if can_start(job):
                failed_before = [name for name in job.after if done[name].returncode != 0]
                pending.remove(job)
                if failed_before:
                    job.returncode, job.summary = 1, f"not run: {', '.join(failed_before)} failed"
                    done[job.name] = job
                    print(f"[{_clock(t0)}] {job.name}: {job.summary}", flush=True)
                    continue
                job.started = time.monotonic()
                env = {**os.environ, **job.env}
                if "WSIO_NO_SPEEDUPS" in job.env:
                    env.pop("WSIO_REQUIRE_SPEEDUPS", None)
                with open(job.log, "wb") as log:
                    log.write(("$ " + " ".join(job.command()) + "\n").encode())
                    log.flush()
                    job.process = subprocess.Popen(
                        job.command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                    )
                running.append(job)
                print(f"[{_clock(t0)}] start {job.name}", flush=True)
        time.sleep(0.5)
        for job in list(running):
            assert job.process is not None
            pid, status, usage = os.wait4(job.process.pid, os.WNOHANG)
            if pid == 0:
                continue
            running.remove(job)
            job.returncode = job.process.returncode = os.waitstatus_to_exitcode(status)
            job.cpu = usage.ru_utime + usage.ru_stime
            job.elapsed = time.monotonic() - job.started
            text = job.log.read_text(errors="replace")
            job.summary = pytest_summary(text) if job.python else ""
            if job.python is None:
                job.summary = "ok" if job.returncode == 0 else f"exit {job.returncode}"
            done[job.name] = job
            verdict = "ok" if job.returncode == 0 else "FAILED"
            print(
                f"[{_clock(t0)}] {verdict} {job.name} ({job.elapsed:.0f} s, {job.cpu:.0f} s of CPU): {job.summary or f'exit {job.returncode}'}",
                flush=True,
            )
            if job.returncode != 0:
                print(failure_report(text), flush=True)
        if time.monotonic() - last_status > 120 and running:
            last_status = time.monotonic()
            print(f"[{_clock(t0)}] running: {', '.join(job.name for job in running)}", flush=True)


def _clock(t0: float) -> str:
    seconds = int(time.monotonic() - t0)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=float,
        default=float(os.environ.get("TEST_JOBS") or os.cpu_count() or 2),
        help="cores to fill (default: all)",
    )
    parser.add_argument("--only", default="", help="comma-separated job names (and what they need)")
    parser.add_argument("--list", action="store_true", help="print the jobs and exit")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # CI cancelling: the jobs are stopped on the way out

    started = time.monotonic()
    pythons = versions.find_pythons()
    default = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(f"CPython {default} (default, the whole suite): {sys.executable}")
    for version, path in pythons.items():
        print(f"CPython {version} (tests/protocol, tests/asyncio, tests/sync; C and pure Python): {path}")
    jobs = jobs_for(pythons)
    if options.only:
        wanted = set(options.only.split(","))
        jobs = [job for job in jobs if job.name in wanted]
        names = {job.name for job in jobs}
        for job in jobs:
            job.after = [name for name in job.after if name in names]
    if options.list:
        for job in jobs:
            print(f"{job.name}: {' '.join(job.command())}")
        return 0
    run(jobs, max(options.jobs, 1))

    elapsed = time.monotonic() - started
    print()
    print(f"{'job':<26} {'status':<7} {'time':>6} {'CPU':>6}  pytest")
    totals: dict[str, int] = {}
    for job in sorted(jobs, key=lambda job: job.name):
        status = "ok" if job.returncode == 0 else "FAILED"
        print(f"{job.name:<26} {status:<7} {job.elapsed:>5.0f}s {job.cpu:>5.0f}s  {job.summary}")
        for number, word in COUNT.findall(job.summary.split(" in ")[0] if job.python else ""):
            word = {"error": "errors", "warning": "warnings"}.get(word, word)
            totals[word] = totals.get(word, 0) + int(number)
    failed = [job.name for job in jobs if job.returncode != 0]
    problems = []
    if not pythons and not options.only:
        problems.append("no CPython 3.10+ found besides the default: the multi-version runs did not run")
    if failed:
        problems.append(f"failed jobs: {', '.join(failed)} (logs in {OUT.relative_to(ROOT)}/)")
    for problem in problems:
        print(f"FAILED: {problem}")
    order = ["failed", "errors", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings"]
    singular = {"errors": "error", "warnings": "warning"}  # as pytest writes them
    counts = ", ".join(
        f"{totals[word]} {singular.get(word, word) if totals[word] == 1 else word}" for word in order if totals.get(word)
    )
    ran_on = {job.python for job in jobs if job.python}
    versions_run = ", ".join([default] * (PYTHON in ran_on) + [v for v in pythons if str(versions.venv_python(v)) in ran_on])
    print(f"{'=' * 10} {counts or 'no tests ran'} in {elapsed:.2f}s ({len(jobs)} jobs; CPython {versions_run}) {'=' * 10}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
