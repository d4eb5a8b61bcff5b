"""The benchmark report: Markdown tables of medians (min–max) and a PNG chart.

Three sections, one per family of cases (passthrough, API-bound, replicas), each keeping
every case it ever had so a regression shows, then the ratios the issues track.
"""

from __future__ import annotations

import platform
import re
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORKER_NAMES = {
    "ours": "ours (Python, sync step)",
    "ours+async": "ours (Python, async step)",
    "ours+metrics": "ours, metrics on",
    "pika": "bare pika ceiling",
    "pika-async": "bare asyncio ceiling",
    "node": "Node.js sailor 2.7.8",
}


def machine() -> str:
    """One line naming the machine, so figures are read against what produced them."""
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    memory = re.search(r"MemTotal:\s*(\d+)", _read("/proc/meminfo"))
    parts = [
        model.group(1).strip() if model else platform.processor() or "unknown CPU",
        f"{len(re.findall(r'^processor', cpuinfo, re.MULTILINE)) or '?'} cores",
        f"{int(memory.group(1)) / 1024**2:.0f} GiB" if memory else "unknown memory",
        f"Linux {platform.release()}",
        f"Python {platform.python_version()}",
        f"Node.js {_version(['node', '--version'])}",
        f"RabbitMQ {_version(['rabbitmqctl', 'version']) or '?'}",
    ]
    return ", ".join(parts)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except OSError:
        return "?"


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    middle = statistics.median(values)
    if len(values) == 1:
        return format(middle, fmt)
    return f"{format(middle, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _median(group: list[Any], value: Callable[[Any], float]) -> float:
    return statistics.median(value(g) for g in group) if group else 0.0


def _group(results: list[Any]) -> dict[tuple[str, str], list[Any]]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for result in results:
        groups[(result.case, result.worker)].append(result)
    return groups


def _family(case: str) -> str:
    if case.startswith("API"):
        return "api"
    if case.startswith("soak"):
        return "soak"
    return "replicas" if case.startswith("replicas") else "passthrough"


def _soak(results: list[Any]) -> list[str]:
    rows = _rows(results, "soak")
    if not rows:
        return []
    lines = [
        "## Memory over a long run",
        "",
        "RSS sampled every quarter second; growth from a quarter into the run to its end "
        "(start-up excluded).",
        "",
        "| case | worker | msg/s | peak RSS MB | RSS growth MB | lost / dup / bad |",
        "|---|---|---|---|---|---|",
    ]
    for case, worker, group in rows:
        cells = [
            case,
            WORKER_NAMES.get(worker, worker),
            _spread([g.rate for g in group], ".0f"),
            _spread([g.rss_mb for g in group], ".1f"),
            _spread([g.extra.get("rss_growth_mb", 0.0) for g in group], ".1f"),
            _losses(group),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _losses(group: list[Any]) -> str:
    return (
        f"{sum(g.lost for g in group)} / {sum(g.duplicated for g in group)} / "
        f"{sum(g.corrupted for g in group)}"
    )


def _rows(results: list[Any], family: str) -> list[tuple[str, str, list[Any]]]:
    groups = _group(results)
    cases = [c for c in dict.fromkeys(r.case for r in results) if _family(c) == family]
    workers = list(dict.fromkeys(r.worker for r in results))
    return [(c, w, groups[(c, w)]) for c in cases for w in workers if groups.get((c, w))]


def _passthrough(results: list[Any]) -> list[str]:
    lines = [
        "## Passthrough steps",
        "",
        "| case | worker | msg/s | p50 ms | p99 ms | start-up s | peak RSS MB | CPU s / 1k msgs "
        "| lost / dup / bad |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, worker, group in _rows(results, "passthrough"):
        paced = case.startswith("paced")
        cells = [
            case,
            WORKER_NAMES.get(worker, worker),
            "–" if paced else _spread([g.rate for g in group], ".0f"),
            _spread([g.p50_ms for g in group], ".2f") if paced else "–",
            _spread([g.p99_ms for g in group], ".2f") if paced else "–",
            "–" if paced else _spread([g.startup_s for g in group], ".2f"),
            _spread([g.rss_mb for g in group], ".1f"),
            _spread([g.cpu_per_1000 for g in group], ".2f"),
            _losses(group),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _api(results: list[Any]) -> list[str]:
    rows = _rows(results, "api")
    if not rows:
        return []
    lines = [
        "## API-bound steps",
        "",
        "One HTTP call per message to `bench/node/api.js`, which answers after the delay. "
        "*Limit* is the concurrency limit: messages in flight ÷ the API's answer time, "
        "measured by the bench with one bare call after another before each run (the delay "
        "plus the API's own overhead). Token calls are the API's own count, against the "
        "token lifetimes that ran out during the run.",
        "",
        "| case | worker | msg/s | limit msg/s | ÷ limit | peak RSS MB | RSS growth MB "
        "| CPU s / 1k msgs | token calls / lifetimes | longest gap ms | lost / dup / bad |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, worker, group in rows:
        limit = _median(group, lambda g: g.extra.get("limit", 0.0))
        tokens = (
            f"{_median(group, lambda g: g.extra['token_calls']):.0f} / "
            f"{_median(group, lambda g: g.extra['lifetimes']):.1f}"
            if "token_calls" in group[0].extra
            else "–"
        )
        cells = [
            case,
            WORKER_NAMES.get(worker, worker),
            _spread([g.rate for g in group], ".1f"),
            f"{limit:.1f}",
            f"{_median(group, lambda g: g.rate) / max(limit, 1e-9):.2f}",
            _spread([g.rss_mb for g in group], ".1f"),
            _spread([g.extra.get("rss_growth_mb", 0.0) for g in group], ".1f"),
            _spread([g.cpu_per_1000 for g in group], ".2f"),
            tokens,
            _spread([g.extra.get("max_gap_ms", 0.0) for g in group], ".0f"),
            _losses(group),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _replicas(results: list[Any]) -> list[str]:
    rows = _rows(results, "replicas")
    if not rows:
        return []
    lines = [
        "## Replicas on one queue",
        "",
        "Worker processes consuming the same step queue (passthrough, 200 B, prefetch 10 "
        "each). *Reordered* counts outputs that arrived after one with a higher sequence "
        "number: with several consumers, or several messages in flight, RabbitMQ promises no "
        "order between them.",
        "",
        "| case | worker | msg/s | × one replica | peak RSS MB (sum) | CPU s / 1k msgs "
        "| reordered | lost / dup / bad |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups = _group(results)
    for case, worker, group in rows:
        single = groups.get(("replicas 1, 200 B, prefetch 10", worker), [])
        scale = _median(group, lambda g: g.rate) / max(_median(single, lambda g: g.rate), 1e-9)
        cells = [
            case,
            WORKER_NAMES.get(worker, worker),
            _spread([g.rate for g in group], ".0f"),
            f"{scale:.2f}" if single else "–",
            _spread([g.rss_mb for g in group], ".1f"),
            _spread([g.cpu_per_1000 for g in group], ".2f"),
            _spread([g.extra.get("reordered", 0) for g in group], ".0f"),
            _losses(group),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _against_ceilings(results: list[Any]) -> list[str]:
    """Each of our workers against the bare ceiling doing the same wire work, in the same
    run, beside the Node.js sailor: throughput and CPU a message."""
    groups = _group(results)
    rows = []
    for case in dict.fromkeys(r.case for r in results):
        family = _family(case)
        if family not in ("passthrough", "api") or case.startswith("paced"):
            continue
        for worker in dict.fromkeys(r.worker for r in results):
            ours = groups.get((case, worker))
            if not ours or not worker.startswith("ours"):
                continue
            asynchronous = "+async" in worker
            ceiling = "pika-async" if asynchronous or family == "api" else "pika"
            rows.append(_against(groups, case, worker, ceiling))
    if not rows:
        return []
    return [
        "## Against the ceilings",
        "",
        "Ours ÷ the bare ceiling doing the same wire work with nothing else (`bench/ceiling.py`"
        " for a sync step's passthrough, `bench/ceiling_async.py` otherwise: the only one "
        "that calls the API), and ÷ the Node.js sailor, medians of this run. CPU counts the "
        "whole process, start-up included.",
        "",
        "| case | worker | msg/s | ceiling | ÷ ceiling | CPU ÷ ceiling's | ÷ Node.js "
        "| ceiling ÷ Node.js | ÷ limit |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _against(groups: dict[tuple[str, str], list[Any]], case: str, worker: str, ceiling: str) -> str:
    ours = groups[(case, worker)]
    rate = _median(ours, lambda g: g.rate)
    cpu = _median(ours, lambda g: g.cpu_per_1000)

    def ratio(other: str, value: Callable[[Any], float], mine: float) -> str:
        theirs = groups.get((case, other))
        return f"{mine / max(_median(theirs, value), 1e-9):.2f}" if theirs else "–"

    limit = _median(ours, lambda g: g.extra.get("limit", 0.0))
    theirs = groups.get((case, ceiling))
    cells = [
        case,
        WORKER_NAMES.get(worker, worker),
        f"{rate:.0f}",
        WORKER_NAMES[ceiling] if theirs else "–",
        ratio(ceiling, lambda g: g.rate, rate),
        ratio(ceiling, lambda g: g.cpu_per_1000, cpu),
        ratio("node", lambda g: g.rate, rate),
        ratio("node", lambda g: g.rate, _median(theirs, lambda g: g.rate)) if theirs else "–",
        f"{rate / limit:.2f}" if limit else "–",
    ]
    return "| " + " | ".join(cells) + " |"


def _ratios(results: list[Any]) -> list[str]:
    groups = _group(results)
    lines = ["## Ratios (ours ÷ other, medians of this run)", ""]
    for case in dict.fromkeys(r.case for r in results):
        for variant in ("ours", "ours+async"):
            lines += _case_ratios(groups, case, variant)
    node_rss = [
        g.rss_mb
        for (c, w), gs in groups.items()
        if w == "node" and not c.startswith("replicas")
        for g in gs
    ]
    our_rss = [
        g.rss_mb
        for (c, w), gs in groups.items()
        if w == "ours" and not c.startswith("replicas")
        for g in gs
    ]
    if node_rss and our_rss:
        ours_mb, node_mb = statistics.median(our_rss), statistics.median(node_rss)
        lines.append(
            f"- peak RSS of one process, all cases: ours {ours_mb:.1f} MB, Node.js "
            f"{node_mb:.1f} MB (× {ours_mb / node_mb:.2f})"
        )
    return lines


def _case_ratios(groups: dict[tuple[str, str], list[Any]], case: str, variant: str) -> list[str]:
    ours = groups.get((case, variant))
    if not ours:
        return []
    label = f"{case} [{'async' if variant.endswith('async') else 'sync'} step]"
    lines = []
    rate = _median(ours, lambda g: g.rate)
    if case.startswith("API"):
        limit = _median(ours, lambda g: g.extra.get("limit", 0.0))
        lines.append(f"- {label}: ÷ limit {rate / max(limit, 1e-9):.2f}")
    sync = groups.get((case, "ours"))
    if variant != "ours" and sync and not case.startswith("paced"):
        lines.append(
            f"- {label}: ÷ the sync step {rate / max(1e-9, _median(sync, lambda g: g.rate)):.2f}"
        )
    metered = groups.get((case, "ours+metrics"))
    if variant == "ours" and metered and not case.startswith("paced"):
        metered_rate = _median(metered, lambda g: g.rate) / max(1e-9, rate)
        cpu = _median(metered, lambda g: g.cpu_per_1000) / max(
            1e-9, _median(ours, lambda g: g.cpu_per_1000)
        )
        lines.append(
            f"- {label}, metrics on ÷ off: throughput × {metered_rate:.2f}, CPU × {cpu:.2f}"
        )
    for other in ("node", "pika", "pika-async"):
        theirs = groups.get((case, other))
        if not theirs:
            continue
        name = WORKER_NAMES[other]
        if case.startswith("paced"):
            p50 = _median(ours, lambda g: g.p50_ms) / max(1e-9, _median(theirs, lambda g: g.p50_ms))
            p99 = _median(ours, lambda g: g.p99_ms) / max(1e-9, _median(theirs, lambda g: g.p99_ms))
            lines.append(f"- {label}, vs {name}: p50 × {p50:.2f}, p99 × {p99:.2f}")
        else:
            theirs_rate = _median(theirs, lambda g: g.rate)
            lines.append(f"- {label}, vs {name}: throughput × {rate / max(1e-9, theirs_rate):.2f}")
    return lines


def markdown(results: list[Any], runs: int, machine_line: str = "") -> str:
    lines = [
        "# Worker benchmark",
        "",
        f"Machine: {machine_line or machine()}.",
        "",
        f"Medians of {runs} run(s), min–max in brackets, every worker measured in the same "
        "run, interleaved. Data rate limits lifted for every worker. The bare pika ceiling "
        "(`bench/ceiling.py`) does a passthrough step's wire work and nothing else, with the "
        "same libraries and headers as the worker (orjson for JSON in both).",
        "",
        *_passthrough(results),
        "",
        *_api(results),
        "",
        *_replicas(results),
        "",
        *_soak(results),
        "",
        *_against_ceilings(results),
        "",
        *_ratios(results),
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def chart(results: list[Any], path: Path, runs: int = 1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _group(results)
    workers = list(dict.fromkeys(r.worker for r in results))
    families = [
        (family, title)
        for family, title in (
            ("passthrough", "Passthrough step"),
            ("api", "API-bound step (one call per message)"),
            ("replicas", "Replicas on one queue"),
        )
        if any(_family(r.case) == family for r in results)
    ]
    fig, axes = plt.subplots(1, len(families), figsize=(7 * len(families), 5.5), squeeze=False)
    for ax, (family, title) in zip(axes[0], families, strict=True):
        cases = [
            c
            for c in dict.fromkeys(r.case for r in results)
            if _family(c) == family and not c.startswith("paced")
        ]
        width = 0.8 / max(1, len(workers))
        for i, worker in enumerate(workers):
            values = [_median(groups.get((c, worker), []), lambda g: g.rate) for c in cases]
            positions = [x + i * width for x in range(len(cases))]
            ax.bar(positions, values, width, label=WORKER_NAMES.get(worker, worker))
        if family == "api":
            limits = [
                max((g.extra.get("limit", 0.0) for w in workers for g in groups.get((c, w), [])),
                    default=0.0)
                for c in cases
            ]  # fmt: skip
            ax.scatter(
                [x + width * (len(workers) - 1) / 2 for x in range(len(cases))],
                limits, marker="_", s=900, color="black", label="concurrency limit",
            )  # fmt: skip
            ax.set_yscale("log")
        ax.set_xticks([x + width * (len(workers) - 1) / 2 for x in range(len(cases))])
        ax.set_xticklabels([c.replace(", ", "\n", 1) for c in cases], fontsize=7, rotation=30)
        ax.set_ylabel("messages per second (median)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle(f"Worker throughput on one machine, median of {runs} run(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
