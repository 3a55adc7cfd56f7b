"""The runner: starts each server (or client) fresh, drives it, collects the figures.

Server benchmarks: the server under test runs alone on CPU 0; the load
generator (picows' C-accelerated client, one long-lived process) on CPU 1.
connrate's load generator is a C client instead where a compiler is (bench/native/ws_connrate.c, CPU 1).
Client benchmarks: picows' echo server is the peer on CPU 0 (picows.websockets
when compression is on, as picows' core has none; the TCP echo for the TCP
client); the client under test runs alone on CPU 1.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import time
from typing import Any

from . import clients as client_registry
from . import native
from . import servers as server_registry
from .common import LOOP_ENV, cpu_seconds, rss_kib
from .procs import LOAD_CPU, SERVER_CPU, Child, free_port, pinning
from .scenarios import Case, Group, Mode, asgi_groups, client_groups, server_groups


def available(
    requires: dict[str, list[str]],
    names: list[str],
    programs: dict[str, list[str]] | None = None,
    libraries: dict[str, dict[str, str]] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The implementations whose libraries import here (and whose programs, such as a C
    compiler, and shared libraries are there too), and why the others were left out."""
    keep, missing = [], {}
    for name in names:
        absent = [p for p in (programs or {}).get(name, []) if shutil.which(p) is None]
        if absent:
            missing[name] = f"{absent[0]} is not installed"
            continue
        lacking = [(lib, pkg) for lib, pkg in (libraries or {}).get(name, {}).items() if ctypes.util.find_library(lib) is None]
        if lacking:
            lib, pkg = lacking[0]
            missing[name] = f"lib{lib} (Debian: apt-get install -y {pkg}) is not installed"
            continue
        for module in requires[name]:
            try:
                found = importlib.util.find_spec(module) is not None
            except ImportError:
                found = False
            if not found:
                missing[name] = f"{module} is not installed"
                break
        else:
            keep.append(name)
    return keep, missing


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min, max and spread of the repeats; errors win if nothing succeeded."""
    values = [s["value"] for s in samples if "value" in s]
    errors = [s["error"] for s in samples if "error" in s]
    if not values:
        if all(s.get("na") for s in samples):
            return {"na": samples[0]["na"]}
        return {"error": errors[0] if errors else "no result"}
    median = statistics.median(values)
    out: dict[str, Any] = {
        "median": median,
        "min": min(values),
        "max": max(values),
        "samples": values,
        "spread_pct": (max(values) - min(values)) / 2 / median * 100 if median else 0.0,
    }
    for key in ("conns",):
        if any(key in s for s in samples):
            out[key] = max(s.get(key, 0) for s in samples)
    # Server side: messages (or connections) per CPU-second of the server. On a machine shared with
    # other work a server that doesn't get its whole core does less; what it costs per message doesn't change.
    per_cpu = [s["value"] / s["server_cpu"] for s in samples if "value" in s and "loadgen_cpu" in s and s.get("server_cpu")]
    if per_cpu:
        out["per_server_cpu"] = {"median": statistics.median(per_cpu), "min": min(per_cpu), "max": max(per_cpu)}
    for key in ("loadgen_cpu", "client_cpu", "server_cpu"):
        figures = [s[key] for s in samples if key in s]
        if figures:
            out[key] = statistics.median(figures)
    if errors:
        out["errors"] = errors
    return out


class Runner:
    def __init__(self, mode: Mode, out: dict[str, Any], log: Any = print) -> None:
        self.mode = mode
        self.out = out
        self.log = log
        self.loadgen: Child | None = None
        self.versions: dict[str, str] = {}
        self.loadgen_name = ""
        self.loadgen_loop = ""
        self.server_loops: dict[str, str] = {}  # implementation -> the loop its READY line named
        self.client_loops: dict[str, str] = {}  # implementation -> the loop its results named
        self.timings: list[list[Any]] = []  # where the time goes: side, first group, implementation, seconds

    # -------------------------------------------------------------- plumbing

    def load(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One command to the load generator; started (or restarted) as needed."""
        if self.loadgen is None or not self.loadgen.alive():
            self.loadgen = Child("bench.loadgen", [], LOAD_CPU, stdin=True)
            info = self.loadgen.expect("READY", 30)
            self.loadgen_name = info["client"]
            self.loadgen_loop = info.get("loop") or ""
        self.loadgen.send({**cmd, "timeout": timeout})
        try:
            return self.loadgen.expect("RESULT", timeout + 15)
        except Exception:
            self.loadgen.stop()  # in an unknown state: a fresh one next time
            self.loadgen = None
            raise

    def start_server(self, impl: str, scenario: str) -> tuple[Child, int]:
        port = free_port()
        server = Child(f"bench.servers.{impl}", ["--port", str(port), "--scenario", scenario], SERVER_CPU)
        try:
            info = server.expect("READY", 30)
        except Exception:
            server.stop()
            raise
        self.versions[info["library"]] = info["version"]
        self.server_loops[impl] = info.get("loop") or "threads"
        return server, port

    def close(self) -> None:
        if self.loadgen is not None:
            if self.loadgen.alive():
                try:
                    self.loadgen.send({"op": "quit"})
                    self.loadgen.proc.wait(5)
                except Exception:  # noqa: BLE001
                    pass
            self.loadgen.stop()
            self.loadgen = None
        Child.stop_all()

    # -------------------------------------------------------------- server benchmarks

    def measure_server_case(self, impl: str, server: Child, port: int, case: Case) -> dict[str, Any]:
        mode = self.mode
        if case.deflate and impl in server_registry.NO_DEFLATE:
            return {"na": "no permessage-deflate"}
        if case.op != "idle" and impl in server_registry.IDLE_ONLY:
            return {"na": "holds idle connections only"}
        proto = "tcp" if impl == "tcp_echo" else "ws"
        if case.op == "idle":
            return self.measure_idle(server, port, proto, case, mode.idle_caps.get(impl))
        cmd = {
            "op": case.op,
            "proto": proto,
            "port": port,
            "warmup": mode.warmup,
            "duration": mode.duration,
            "verify": mode.verify,
            "server_pid": server.pid,
            **case.params,
        }
        reply = self.load(cmd, timeout=mode.warmup + mode.duration + 60)
        if "error" in reply:
            return {"error": reply["error"] + ("" if server.alive() else " (server died" + server.stderr_tail() + ")")}
        return {"value": reply["rate"], "loadgen_cpu": reply["loadgen_cpu"], "server_cpu": reply["server_cpu"]}

    def measure_idle(self, server: Child, port: int, proto: str, case: Case, cap: int | None) -> dict[str, Any]:
        """Server RSS before and after the load generator opens ``conns`` connections and holds them."""
        deflate = case.deflate
        # A few connections first, so that lazy imports and first-use caches aren't counted.
        warm = self.load({"op": "idle_open", "proto": proto, "port": port, "conns": 10, "deflate": deflate}, 60)
        self.load({"op": "idle_close"}, 30)
        if "error" in warm:
            return {"error": warm["error"]}
        time.sleep(0.2)
        before = settled_rss(server.pid)
        conns = min(case.params["conns"], cap or case.params["conns"])
        reply = self.load({"op": "idle_open", "proto": proto, "port": port, "conns": conns, "deflate": deflate}, 120)
        try:
            if "error" in reply:
                return {"error": reply["error"]}
            # The server's CPU use while it holds idle connections (a server that polls shows it here too).
            t0, s0 = time.monotonic(), cpu_seconds(server.pid)
            after = settled_rss(server.pid)
            time.sleep(max(0.0, IDLE_CPU_WINDOW - (time.monotonic() - t0)))
            idle_cpu = (cpu_seconds(server.pid) - s0) / (time.monotonic() - t0)
        finally:
            self.load({"op": "idle_close"}, 60)
        opened = reply["opened"]
        sample = {
            "value": (after - before) / opened,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "server_cpu": round(idle_cpu, 3),
        }
        if opened != case.params["conns"]:
            sample["conns"] = opened
        return sample

    def run_server_bundle(self, groups: list[Group], impls: list[str], repeats: int) -> None:
        """Each repeat goes round the implementations (A B C A B C); a fresh server each time."""
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {c.name: {i: [] for i in impls} for g in groups for c in g.cases}
        scenario = groups[0].server_scenario
        for rep in range(repeats):
            for impl in impls:
                if impl in server_registry.IDLE_ONLY and not any(is_memory(g) for g in groups):
                    for g in groups:  # nothing it can serve here: don't start it
                        for case in g.cases:
                            samples[case.name][impl].append({"na": "holds idle connections only"})
                    continue
                try:
                    server, port = self.start_server(impl, scenario)
                except Exception as exc:  # noqa: BLE001
                    for g in groups:
                        for case in g.cases:
                            samples[case.name][impl].append({"error": f"server didn't start: {exc}"})
                    continue
                t0 = time.monotonic()
                try:
                    for g in groups:
                        for case in g.cases:
                            quiesce(server.pid)
                            try:
                                sample = self.measure_server_case(impl, server, port, case)
                            except Exception as exc:  # noqa: BLE001
                                sample = {"error": f"{type(exc).__name__}: {exc}"}
                            samples[case.name][impl].append(sample)
                finally:
                    server.stop()
                self.timings.append(["server", groups[0].name, impl, round(time.monotonic() - t0, 2)])
        for g in groups:
            for case in g.cases:
                self.record("server", g, case, {i: summarize(samples[case.name][i]) for i in impls})

    # -------------------------------------------------------------- client benchmarks

    def run_client_bundle(self, groups: list[Group], impls: list[str], repeats: int) -> None:
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {c.name: {i: [] for i in impls} for g in groups for c in g.cases}
        peers: dict[str, tuple[Child, int]] = {}

        def peer(kind: str) -> tuple[Child, int]:
            if kind not in peers or not peers[kind][0].alive():
                peers[kind] = self.start_server(kind, "echo")
            return peers[kind]

        try:
            for rep in range(repeats):
                for impl in impls:
                    # One process per client and repeat; the peers are shared.
                    cases: list[Case] = []
                    kinds: list[str] = []
                    for g in groups:
                        for case in g.cases:
                            if case.deflate and impl in client_registry.NO_DEFLATE:
                                samples[case.name][impl].append({"na": "no permessage-deflate"})
                                continue
                            cases.append(case)
                            kinds.append(
                                "tcp_echo" if impl == "tcp_raw" else "picows_websockets" if case.deflate else "picows_core"
                            )
                    t0 = time.monotonic()
                    for case, sample in zip(cases, self.run_client(impl, kinds, cases, peer)):
                        samples[case.name][impl].append(sample)
                    self.timings.append(["client", groups[0].name, impl, round(time.monotonic() - t0, 2)])
        finally:
            for server, _ in peers.values():
                server.stop()
        for g in groups:
            for case in g.cases:
                self.record("client", g, case, {i: summarize(samples[case.name][i]) for i in impls})

    def run_client(self, impl: str, kinds: list[str], cases: list[Case], peer: Any) -> list[dict[str, Any]]:
        import json

        mode = self.mode
        spec = []
        try:
            for kind, c in zip(kinds, cases):
                server, port = peer(kind)
                spec.append(
                    {
                        "name": c.name,
                        "op": c.op,
                        "port": port,
                        "peer_pid": server.pid,
                        "warmup": mode.warmup,
                        "duration": mode.duration,
                        "verify": mode.verify,
                        **c.params,
                    }
                )
        except Exception as exc:  # noqa: BLE001
            return [{"error": f"peer didn't start: {exc}"} for _ in cases]
        args = ["--cases", json.dumps(spec)]
        client = Child(f"bench.clients.{impl}", args, LOAD_CPU)
        out: list[dict[str, Any]] = []
        try:
            for case in cases:
                try:
                    reply = client.expect("RESULT", mode.warmup + mode.duration + 60)
                except Exception as exc:  # noqa: BLE001
                    out.append({"error": str(exc)})
                    break
                if "error" in reply:
                    out.append({"error": reply["error"]})
                else:
                    out.append({"value": reply["rate"], "client_cpu": reply["client_cpu"], "server_cpu": reply["server_cpu"]})
                    self.client_loops[impl] = reply.get("loop") or "?"
        finally:
            client.stop()
        while len(out) < len(cases):
            out.append({"error": "client stopped early" + client.stderr_tail()})
        return out

    # -------------------------------------------------------------- results

    def record(self, side: str, group: Group, case: Case, results: dict[str, Any]) -> None:
        size = case.params.get("size")
        entry = {
            "group": group.name,
            "chart": group.chart or group.name,
            "title": group.title,
            "unit": case.unit,
            "higher_is_better": case.higher_is_better,
            "size": size if case.op == "echo" else None,
            "results": results,
        }
        self.out[side][case.name] = entry
        labels = server_registry.LABELS if side == "server" else client_registry.CLIENTS
        parts = []
        for impl, r in results.items():
            label = labels[impl]
            if "median" in r:
                parts.append(f"{label} {fmt(r['median'], case.unit)}")
            elif "na" in r:
                parts.append(f"{label} n/a")
            else:
                parts.append(f"{label} ERROR")
        self.log(f"[{side}] {case.name} ({case.unit}): " + " | ".join(parts))


#: What the ASGI suite's servers run (bench/servers/_uvicorn.py).
ASGI_STACK = (
    "A Starlette echo endpoint (`WebSocketRoute`: `receive()`, then `send_text()` or `send_bytes()`) on uvicorn "
    "with httptools and uvloop (what `uvicorn[standard]` and uvicorn's `auto` settings run), uvicorn's defaults "
    "otherwise (keepalive pings every 20 s, `ws_max_queue` 32), log level warning and no access log; "
    "the WebSocket engine is the one thing that changes: `--ws wsio.asgi:UvicornProtocol`, "
    "`--ws websockets-sansio` (uvicorn's default) or `--ws wsproto`."
)


def loadgen_name() -> str:
    if os.environ.get("BENCH_LOADGEN") == "wsio":
        return "wsio's callback client (BENCH_LOADGEN=wsio)"
    if importlib.util.find_spec("picows") is not None:
        return "picows' C-accelerated client"
    return "wsio's callback client (picows isn't installed: figures are a floor)"


def c_clients_note() -> str:
    """What the header adds about the load generator's C clients, where they run."""
    if native.c_clients():
        return (
            "; echo without compression (the TCP echo's too) and connrate: C clients, bench/native/ws_echo_load.c"
            " and bench/native/ws_connrate.c (started by it, on its core)"
        )
    return ""


def load_generator_text() -> str:
    """The results' header line on the server side's load generator."""
    return f"{loadgen_name()} (one process, CPU 1); raw asyncio TCP for the TCP echo's other scenarios" + c_clients_note()


def event_loop_name(loop: str) -> str:
    """What the header says about the loop the asyncio processes run on."""
    if loop == "uvloop":
        from importlib import metadata

        return f"uvloop {metadata.version('uvloop')} (--uvloop) for every asyncio server, client and the load generator"
    return "asyncio's default loop for every asyncio server, client and the load generator (--uvloop: uvloop)"


def versions(suite: str = "main") -> dict[str, str]:
    from importlib import metadata

    out = {}
    dists = ["wsio", "websockets", "picows", "aiohttp", "websocket-client", "aiofastnet"]
    if suite == "asgi":
        dists = ["wsio", "websockets", "wsproto", "uvicorn", "starlette", "httptools", "uvloop", "picows"]
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


#: At least this long (seconds) to measure a server's CPU use while it holds idle connections.
IDLE_CPU_WINDOW = 0.3


def quiesce(pid: int, limit: float = 3.0) -> None:
    """Wait until the server is idle: the previous case's aftermath (closing connections,
    logging their errors, draining buffers) must not eat into the next one's window."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = cpu_seconds(pid)
        if now - last < 0.005:  # under 10% of a core over 50 ms
            return
        last = now


def settled_rss(pid: int, limit: float = 3.0) -> int:
    """RSS once it stops moving (within 0.5% over 0.1 s), or after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_kib(pid)
        if abs(now - last) <= last * 0.005:
            return now
        last = now
    return last


def fmt(value: float, unit: str) -> str:
    if unit == "KiB/conn":
        return f"{value:.1f}"
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def bundles(groups: list[Group], mode: Mode) -> list[tuple[list[Group], int]]:
    """Which groups share a server process, and how many repeats each bundle gets.

    In full mode every group gets fresh processes. In quick mode the echo
    groups share one server process (per implementation and repeat) so the time
    goes into measuring rather than starting Python; memory groups still get a
    fresh process each. In smoke mode the two memory groups share one too.
    """
    if mode.name == "full":
        return [([g], mode.idle_repeats if is_memory(g) else mode.repeats) for g in groups]
    echo = [g for g in groups if g.server_scenario == "echo" and not is_memory(g)]
    memory = [g for g in groups if is_memory(g)]
    other = [g for g in groups if g not in echo and g not in memory]
    out = [(echo, mode.repeats)] if echo else []
    out += [([g], mode.repeats) for g in other]
    if mode.name == "smoke" and memory:
        out.append((memory, mode.idle_repeats))
    else:
        out += [([g], mode.idle_repeats) for g in memory]
    return out


def is_memory(group: Group) -> bool:
    return any(c.op == "idle" for c in group.cases)


def run(
    mode: Mode,
    servers: list[str] | None = None,
    clients: list[str] | None = None,
    sides: tuple[str, ...] = ("server", "client"),
    log: Any = print,
    suite: str = "main",
    loop: str = "asyncio",
) -> dict[str, Any]:
    """Run a suite: ``main`` (every library's own server and client) or ``asgi``
    (a Starlette echo on uvicorn with each WebSocket engine: servers only).

    ``loop="uvloop"`` runs every asyncio server, client and the load generator on uvloop
    (the children read it from the environment: common.run_loop)."""
    started = time.time()
    previous_loop = os.environ.get(LOOP_ENV)
    os.environ[LOOP_ENV] = loop
    if suite == "asgi":
        sides = tuple(s for s in sides if s == "server")
        server_impls, server_missing = available(server_registry.ASGI_REQUIRES, servers or list(server_registry.ASGI_SERVERS))
        client_impls, client_missing = [], {}
        groups_of = asgi_groups
    else:
        server_impls, server_missing = available(
            server_registry.REQUIRES,
            servers or list(server_registry.SERVERS),
            server_registry.PROGRAMS,
            server_registry.SHARED_LIBRARIES,
        )
        client_impls, client_missing = available(client_registry.REQUIRES, clients or list(client_registry.CLIENTS))
        groups_of = server_groups
    out: dict[str, Any] = {
        "meta": {
            "suite": suite,
            "mode": mode.name,
            "repeats": mode.repeats,
            "idle_repeats": mode.idle_repeats,
            "warmup_s": mode.warmup,
            "window_s": mode.duration,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "pinned": pinning(),
            "loadavg_before": os.getloadavg(),
            "load_generator": load_generator_text(),
            "event_loop": event_loop_name(loop),
            # glibc's malloc settings, when set: every process of the run inherits them.
            "malloc_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")},
            "client_peer": "picows' echo server (CPU 0); picows.websockets with compression; the TCP echo for the TCP client",
            **({"asgi_stack": ASGI_STACK} if suite == "asgi" else {}),
            "servers": {i: server_registry.LABELS[i] for i in server_impls},
            "clients": {i: client_registry.CLIENTS[i] for i in client_impls},
            "skipped": {
                **{f"server {k}": v for k, v in server_missing.items()},
                **{f"client {k}": v for k, v in client_missing.items()},
            },
        },
        "server": {},
        "client": {},
    }
    runner = Runner(mode, out, log)
    pin = "server on CPU 0, load on CPU 1" if pinning() else "not pinned (no taskset or one core)"
    title = "wsio bench" if suite == "main" else f"wsio bench, {suite} suite"
    log(f"{title}, {mode.name} mode: {pin}; server load generator: {loadgen_name()}{c_clients_note()}")
    log(f"  event loop: {out['meta']['event_loop']}")
    for key, why in out["meta"]["skipped"].items():
        log(f"  skipped {key}: {why}")
    if "c_epoll" in server_impls and "server" in sides:
        try:  # before any server starts, so that compiling doesn't eat into a start-up time-out
            log(f"  C reference: {native.build('ws_echo')}")
        except Exception as exc:  # noqa: BLE001 - its server then fails to start, and the figures say so
            log(f"  C reference didn't build: {exc}")
    try:
        if "server" in sides and server_impls:
            for groups, repeats in bundles(groups_of(mode), mode):
                names = ", ".join(g.name for g in groups)
                log(f"[server] {names}: {len(server_impls)} servers x {repeats} repeats ...")
                runner.run_server_bundle(groups, server_impls, repeats)
        if "client" in sides and client_impls:
            groups = client_groups(mode)
            shared = mode.name != "full"
            for chunk in [groups] if shared else [[g] for g in groups]:
                names = ", ".join(g.name for g in chunk)
                log(f"[client] {names}: {len(client_impls)} clients x {mode.repeats} repeats ...")
                runner.run_client_bundle(chunk, client_impls, mode.repeats)
    finally:
        runner.close()
        if previous_loop is None:
            os.environ.pop(LOOP_ENV, None)
        else:
            os.environ[LOOP_ENV] = previous_loop
    out["meta"]["server_loops"] = runner.server_loops
    out["meta"]["client_loops"] = runner.client_loops
    if runner.loadgen_loop:
        out["meta"]["load_generator_loop"] = runner.loadgen_loop
    out["meta"]["versions"] = versions(suite)
    out["meta"]["timings"] = runner.timings
    out["meta"]["seconds"] = round(time.time() - started, 1)
    out["meta"]["loadavg_after"] = os.getloadavg()
    return out


__all__ = ["run", "sys"]
