"""The benchmark report: a Markdown table of medians (min–max) and a PNG chart."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

WORKER_NAMES = {
    "ours": "ours (Python)",
    "pika": "bare pika ceiling",
    "node": "Node.js sailor 2.7.8",
}


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    middle = statistics.median(values)
    if len(values) == 1:
        return format(middle, fmt)
    return f"{format(middle, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _group(results: list[Any]) -> dict[tuple[str, str], list[Any]]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for result in results:
        groups[(result.case, result.worker)].append(result)
    return groups


def markdown(results: list[Any], runs: int) -> str:
    groups = _group(results)
    cases = list(dict.fromkeys(r.case for r in results))
    workers = list(dict.fromkeys(r.worker for r in results))
    lines = [
        f"Medians of {runs} run(s), min–max in brackets. Data rate limit lifted for every worker.",
        "",
        "| case | worker | msg/s | p50 ms | p99 ms | start-up s | peak RSS MB | CPU s / 1k msgs "
        "| lost / dup / bad |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        for worker in workers:
            group = groups.get((case, worker), [])
            if not group:
                continue
            paced = case.startswith("paced")
            lines.append(
                "| "
                + " | ".join(
                    [
                        case,
                        WORKER_NAMES.get(worker, worker),
                        "–" if paced else _spread([g.rate for g in group], ".0f"),
                        _spread([g.p50_ms for g in group], ".2f") if paced else "–",
                        _spread([g.p99_ms for g in group], ".2f") if paced else "–",
                        "–" if paced else _spread([g.startup_s for g in group], ".2f"),
                        _spread([g.rss_mb for g in group], ".1f"),
                        _spread([g.cpu_per_1000 for g in group], ".2f"),
                        f"{sum(g.lost for g in group)} / {sum(g.duplicated for g in group)} / "
                        f"{sum(g.corrupted for g in group)}",
                    ]
                )
                + " |"
            )
    lines += ["", "Ratios (ours ÷ other, medians):", ""]
    for case in cases:
        ours = groups.get((case, "ours"))
        if not ours:
            continue
        paced = case.startswith("paced")
        for other in ("node", "pika"):
            theirs = groups.get((case, other))
            if not theirs:
                continue
            if paced:
                p50 = statistics.median(g.p50_ms for g in ours) / max(
                    1e-9, statistics.median(g.p50_ms for g in theirs)
                )
                p99 = statistics.median(g.p99_ms for g in ours) / max(
                    1e-9, statistics.median(g.p99_ms for g in theirs)
                )
                lines.append(
                    f"- {case}, vs {WORKER_NAMES[other]}: p50 × {p50:.2f}, p99 × {p99:.2f}"
                )
            else:
                rate = statistics.median(g.rate for g in ours) / max(
                    1e-9, statistics.median(g.rate for g in theirs)
                )
                lines.append(f"- {case}, vs {WORKER_NAMES[other]}: throughput × {rate:.2f}")
    node_rss = [g.rss_mb for (c, w), gs in groups.items() if w == "node" for g in gs]
    our_rss = [g.rss_mb for (c, w), gs in groups.items() if w == "ours" for g in gs]
    if node_rss and our_rss:
        lines.append(
            f"- peak RSS, all cases: ours {statistics.median(our_rss):.1f} MB, Node.js "
            f"{statistics.median(node_rss):.1f} MB (× {statistics.median(our_rss) / statistics.median(node_rss):.2f})"
        )
    return "\n".join(lines) + "\n"


def chart(results: list[Any], path: Path, runs: int = 1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _group(results)
    cases = [c for c in dict.fromkeys(r.case for r in results) if not c.startswith("paced")]
    workers = list(dict.fromkeys(r.worker for r in results))
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(1, len(workers))
    for i, worker in enumerate(workers):
        values = [
            statistics.median(g.rate for g in groups.get((c, worker), []))
            if groups.get((c, worker))
            else 0
            for c in cases
        ]
        positions = [x + i * width for x in range(len(cases))]
        ax.bar(positions, values, width, label=WORKER_NAMES.get(worker, worker))
    ax.set_xticks([x + width * (len(workers) - 1) / 2 for x in range(len(cases))])
    ax.set_xticklabels(cases)
    ax.set_ylabel("messages per second (median)")
    ax.set_title(f"Passthrough step throughput, one machine, median of {runs} run(s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
