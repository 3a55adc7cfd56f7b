"""The results as Markdown tables, JSON, and a bar chart per scenario."""

from __future__ import annotations

import json
import os
from typing import Any

from .clients import CLIENTS
from .servers import LABELS, NOTES

#: The references every figure is compared with: side -> (column title, implementation).
REFERENCES = {
    "server": [("websockets", "websockets_asyncio"), ("picows", "picows_core"), ("TCP", "tcp_echo"), ("C", "c_epoll")],
    "client": [("websockets", "websockets_asyncio"), ("picows", "picows_core"), ("TCP", "tcp_raw")],
}
WSIO = {"server": ["wsio_asyncio", "wsio_listener"], "client": ["wsio_asyncio", "wsio_listener", "wsio_sync"]}
#: The ASGI suite: every engine under the same uvicorn and Starlette, against uvicorn's default engine.
ASGI_REFERENCES = [("websockets-sansio", "uvicorn_websockets_sansio"), ("wsproto", "uvicorn_wsproto")]
ASGI_FLOOR = "uvicorn_floor"  # no engine: the least memory per connection any engine could reach
ASGI_WSIO = ["uvicorn_wsio"]
#: Issue 12's targets for wsio's engine, as ratios to websockets-sansio: case prefix, comparison, ratio.
ASGI_TARGETS = [("pipelined-16B", ">=", 1.5), ("conns", ">=", 1.2), ("idle", "<=", 0.5)]
BOUND = 0.9  # a load generator (or peer) busier than this may be what limits the figure


def labels(side: str) -> dict[str, str]:
    return LABELS if side == "server" else CLIENTS


def references(data: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return ASGI_REFERENCES if data["meta"].get("suite") == "asgi" else REFERENCES[side]


def wsio_impls(data: dict[str, Any], side: str) -> list[str]:
    return ASGI_WSIO if data["meta"].get("suite") == "asgi" else WSIO[side]


def basename(data: dict[str, Any]) -> str:
    """What the files are called: latest.* for the main suite, asgi.* (and asgi-*.png) for the ASGI suite."""
    suite = data["meta"].get("suite", "main")
    return "latest" if suite == "main" else suite


def number(value: float, unit: str) -> str:
    if unit == "KiB/conn":
        return f"{value:,.1f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def ratio(entry: dict[str, Any], impl: str, ref: str) -> str:
    results = entry["results"]
    mine, theirs = results.get(impl, {}), results.get(ref, {})
    if "median" not in mine or "median" not in theirs or not theirs["median"]:
        return "—"
    return f"{mine['median'] / theirs['median']:.2f}x"


def cpu_ratio(entry: dict[str, Any], impl: str, ref: str) -> float | None:
    """The ratio of figures per server CPU-second (see run.summarize), or None."""
    mine = entry["results"].get(impl, {}).get("per_server_cpu")
    theirs = entry["results"].get(ref, {}).get("per_server_cpu")
    if not mine or not theirs or not theirs["median"]:
        return None
    return float(mine["median"] / theirs["median"])


def bound_mark(side: str, result: dict[str, Any]) -> str:
    """† when the other end was saturated: the figure is a floor, not the implementation's limit.
    A count in brackets: measured with fewer connections than the scenario says."""
    other = result.get("loadgen_cpu") if side == "server" else result.get("server_cpu")
    mark = " †" if other is not None and other >= BOUND else ""
    if result.get("conns"):
        mark += f" ({result['conns']:,} conns)"
    return mark


def cell(side: str, entry: dict[str, Any], impl: str) -> str:
    r = entry["results"].get(impl)
    if r is None:
        return "—"
    if "median" in r:
        return number(r["median"], entry["unit"]) + bound_mark(side, r)
    if "na" in r:
        return "n/a"
    return "error"


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    asgi = meta.get("suite") == "asgi"
    memory_runs = meta.get("idle_repeats", 1)
    lines = [
        "# wsio benchmarks" + (": the ASGI suite" if asgi else ""),
        "",
        *([f"{meta['asgi_stack']}", ""] if asgi else []),
        f"Mode **{meta['mode']}**: median of {meta['repeats']} repeats "
        f"({meta['warmup_s']} s warm-up, {meta['window_s']} s window each; "
        f"memory: {memory_runs} run{'s' if memory_runs != 1 else ''}), "
        f"measured {meta['started']}, {meta['seconds']} s in all.",
        f"Python {meta['python']} on {meta['platform']}, {meta['cpus']} CPUs; "
        + ("server on CPU 0, load on CPU 1 (taskset)." if meta["pinned"] else "not pinned (no taskset)."),
        f"Load average {fmt_load(meta['loadavg_before'])} before, {fmt_load(meta['loadavg_after'])} after "
        "(above 0 means other work shared the machine: figures are noisier and lower).",
        f"Server benchmarks: load generator = {meta['load_generator']}.",
        *([f"Event loop: {meta['event_loop']}" + loops_note(meta) + "."] if meta.get("event_loop") else []),
        *(
            ["Allocator: " + " ".join(f"{k}={v}" for k, v in meta["malloc_env"].items()) + " for every process."]
            if meta.get("malloc_env")
            else []
        ),
        *([] if asgi else [f"Client benchmarks: peer = {meta['client_peer']}."]),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(meta.get("versions", {}).items())) + ".",
        "",
        "Ratios are medians divided by the reference's median; for memory (KiB/conn) lower is better.",
        "Spread is half the min-max range of the repeats, in % of the median. "
        f"† marks a figure where the load generator (server side) or the peer server (client side) was above {BOUND:.0%} "
        "of a core: it may be what limited the figure. "
        "*server CPU* is the server process's CPU time over the measuring windows (from /proc/PID/stat), "
        "in cores: 1.00 is one whole core; for memory, over the time it held the idle connections.",
        "",
    ]
    for impl, note in NOTES.items():
        if impl in meta.get("servers", {}):
            lines.append(f"- {LABELS[impl]}: {note}")
    for name, why in meta.get("skipped", {}).items():
        lines.append(f"- skipped {name}: {why}")
    if asgi:
        lines += ["", *targets(data)]
    lines += ["", "## wsio against the references", ""]
    for side in ("server", "client"):
        cases = data.get(side) or {}
        if not cases:
            continue
        impls = [i for i in wsio_impls(data, side) if any(i in e["results"] for e in cases.values())]
        refs = references(data, side)
        head = ["scenario", "unit"]
        for impl in impls:
            head += [labels(side)[impl]] + [f"vs {title}" for title, _ in refs]
        lines += [f"### {side.capitalize()}s", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for case, entry in cases.items():
            row = [case, entry["unit"]]
            for impl in impls:
                row += [cell(side, entry, impl)] + [ratio(entry, impl, ref) for _, ref in refs]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Every implementation", ""]
    errors: list[str] = []
    for side in ("server", "client"):
        for case, entry in (data.get(side) or {}).items():
            unit = entry["unit"]
            better = "higher is better" if entry["higher_is_better"] else "lower is better"
            lines += [f"### {side} · {case} ({unit}, {better})", ""]
            refs = references(data, side)
            mbps = entry.get("size") is not None
            # The ASGI suite also gives each figure per CPU-second of the server (less noisy on a shared machine).
            per_cpu = asgi and side == "server" and unit != "KiB/conn"
            head = ["implementation", "median", "spread"] + (["MB/s"] if mbps else []) + [f"vs {t}" for t, _ in refs]
            # The server's CPU use over the same windows, in cores (1.00 = one whole core): a server that
            # polls without sleeping (socketify) shows about 1.00 whatever its figure.
            cpu_column = side == "server"
            if cpu_column:
                head.append("server CPU")
            if per_cpu:
                head += ["per server CPU-s", "spread"] + [f"vs {t}" for t, _ in refs]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for impl, r in entry["results"].items():
                label = labels(side)[impl]
                if "median" in r:
                    row = [label, number(r["median"], unit) + bound_mark(side, r), f"±{r['spread_pct']:.0f}%"]
                    if mbps:
                        row.append(f"{r['median'] * entry['size'] / 1e6:,.1f}")
                    row += [ratio(entry, impl, ref) for _, ref in refs]
                    if cpu_column:
                        row.append(f"{r['server_cpu']:.2f}" if r.get("server_cpu") is not None else "—")
                    if per_cpu:
                        pc = r.get("per_server_cpu")
                        if pc:
                            spread = (pc["max"] - pc["min"]) / 2 / pc["median"] * 100 if pc["median"] else 0.0
                            row += [number(pc["median"], unit), f"±{spread:.0f}%"]
                            row += [f"{x:.2f}x" if (x := cpu_ratio(entry, impl, ref)) is not None else "—" for _, ref in refs]
                        else:
                            row += ["—", ""] + ["—" for _ in refs]
                else:
                    text = "n/a" if "na" in r else "error"
                    row = [label, text, ""] + ([""] if mbps else []) + ["" for _ in refs] + ([""] if cpu_column else [])
                    if per_cpu:
                        row += ["", ""] + ["" for _ in refs]
                    if "error" in r:
                        errors.append(f"- {side} · {case} · {label}: {r['error']}")
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    if errors:
        lines += ["## Errors", "", *errors, ""]
    return "\n".join(lines)


def targets(data: dict[str, Any]) -> list[str]:
    """The ASGI suite's targets (issue 12): wsio's engine against websockets-sansio, met or not."""
    ref = ASGI_REFERENCES[0][1]
    lines = [
        "## Targets",
        "",
        "wsio's engine against websockets-sansio (uvicorn's default engine), median against median; the last "
        "column compares what each server does per CPU-second it got, a cross-check that varies less when other "
        "work shares the machine"
        + (
            " (smoke mode: tiny counts that check the plumbing, not figures to judge a target by):"
            if data["meta"]["mode"] == "smoke"
            else ":"
        ),
        "",
        "| scenario | target | wsio | websockets-sansio | ratio | met | ratio per server CPU-s |",
        "|---|---|---|---|---|---|---|",
    ]
    for prefix, op, goal in ASGI_TARGETS:
        for case, entry in (data.get("server") or {}).items():
            if not case.startswith(prefix):
                continue
            mine, theirs = entry["results"].get(ASGI_WSIO[0], {}), entry["results"].get(ref, {})
            if "median" in mine and "median" in theirs and theirs["median"]:
                r = mine["median"] / theirs["median"]
                met = "yes" if (r >= goal if op == ">=" else r <= goal) else "no"
                per_cpu = cpu_ratio(entry, ASGI_WSIO[0], ref)
                figures = [
                    number(mine["median"], entry["unit"]),
                    number(theirs["median"], entry["unit"]),
                    f"{r:.2f}x",
                    met,
                    f"{per_cpu:.2f}x" if per_cpu is not None else "—",
                ]
            else:
                figures = ["—", "—", "—", "no figure", "—"]
            lines.append(f"| {case} | {op} {goal}x | " + " | ".join(figures) + " |")
    for case, entry in (data.get("server") or {}).items():
        floor, theirs = entry["results"].get(ASGI_FLOOR, {}), entry["results"].get(ref, {})
        if case.startswith("idle") and "median" in floor and "median" in theirs and theirs["median"]:
            lines += [
                "",
                f"{case}: uvicorn, Starlette and the app with no WebSocket engine (a stub that answers the "
                f"upgrade and runs the app, no framing) hold {number(floor['median'], entry['unit'])} KiB per "
                f"connection, {floor['median'] / theirs['median']:.2f}x websockets-sansio's figure: no engine can "
                "go below that. What the engines add to it: "
                + ", ".join(
                    f"{labels('server')[impl]} {number(r['median'] - floor['median'], entry['unit'])} KiB"
                    for impl, r in entry["results"].items()
                    if impl != ASGI_FLOOR and "median" in r
                )
                + ".",
            ]
            mine = entry["results"].get(ASGI_WSIO[0], {})
            if "median" in mine and theirs["median"] > floor["median"]:
                added = (mine["median"] - floor["median"]) / (theirs["median"] - floor["median"])
                lines[-1] += f" wsio's engine adds {added:.2f}x what websockets-sansio's adds."
    return lines


def loops_note(meta: dict[str, Any]) -> str:
    """The servers whose READY line named a loop other than the one asked for (their own, or threads)."""
    asked = "uvloop" if meta.get("event_loop", "").startswith("uvloop") else "asyncio"
    others = {impl: loop for impl, loop in meta.get("server_loops", {}).items() if loop != asked}
    if not others:
        return ""
    return "; servers on another loop: " + ", ".join(f"{LABELS.get(impl, impl)} on {loop}" for impl, loop in others.items())


def fmt_load(load: Any) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def write(data: dict[str, Any], out_dir: str, charts: bool = True, log: Any = print) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    written = []
    name = basename(data)
    path = os.path.join(out_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    written.append(path)
    path = os.path.join(out_dir, f"{name}.md")
    with open(path, "w") as f:
        f.write(markdown(data))
    written.append(path)
    if charts:
        try:
            written += draw(data, out_dir)
        except ImportError:
            log("charts skipped: matplotlib isn't installed (pip install -e '.[bench]')")
    return written


def draw(data: dict[str, Any], out_dir: str) -> list[str]:
    """One PNG per scenario group and side, a panel per case, a bar per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for side in ("server", "client"):
        groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for case, entry in (data.get(side) or {}).items():
            groups.setdefault(entry.get("chart") or entry["group"], []).append((case, entry))
        for group, cases in groups.items():
            columns = min(2, len(cases))
            rows = (len(cases) + columns - 1) // columns
            impls = list(cases[0][1]["results"])
            fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 0.45 * len(impls) * rows + 1.4), squeeze=False)
            for ax in axes.flat[len(cases) :]:
                ax.set_visible(False)
            for ax, (case, entry) in zip(axes.flat, cases):
                results = entry["results"]
                names = [labels(side)[i] for i in impls]
                medians = [results[i].get("median", 0.0) for i in impls]
                low = [m - results[i].get("min", m) for i, m in zip(impls, medians)]
                high = [results[i].get("max", m) - m for i, m in zip(impls, medians)]
                colors = [
                    "#d1495b"
                    if i in wsio_impls(data, side)
                    else "#999999"
                    if i.startswith("tcp") or i in (ASGI_FLOOR, "c_epoll")
                    else "#30638e"
                    for i in impls
                ]
                y = range(len(impls))
                ax.barh(y, medians, xerr=[low, high], color=colors, capsize=2, error_kw={"elinewidth": 0.8})
                ax.set_yticks(list(y), names, fontsize=8)
                ax.invert_yaxis()
                for yi, i, m in zip(y, impls, medians):
                    r = results[i]
                    text = number(m, entry["unit"]) + bound_mark(side, r) if "median" in r else ("n/a" if "na" in r else "error")
                    ax.text(r.get("max", m), yi, " " + text, va="center", fontsize=7)
                better = "higher is better" if entry["higher_is_better"] else "lower is better"
                ax.set_title(f"{case}: {entry['unit']}, {better}", fontsize=9)
                ax.tick_params(axis="x", labelsize=7)
                ax.margins(x=0.18)
            fig.suptitle(f"{side}s · {cases[0][1]['title']} ({data['meta']['mode']} mode)", fontsize=10)
            fig.tight_layout()
            prefix = "" if basename(data) == "latest" else basename(data) + "-"
            path = os.path.join(out_dir, f"{prefix}{side}-{group}.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
    return written
