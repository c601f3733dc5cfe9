"""Usage and cost from the audit ledger: calls, tokens, cache hit share and USD per agent, per
week and in total, each split by backend."""

from __future__ import annotations

from collections import defaultdict

from castmatch.llm.budget import USAGE_KINDS

FAILED = {"error", "malformed", "lost"}


def _empty() -> dict:
    return {"calls": 0, "failed": 0, "lost": 0, "reused": 0, **dict.fromkeys(USAGE_KINDS, 0), "cost_usd": 0.0}


def _add(total: dict, row: dict) -> None:
    """A ledger row: ``lost`` attempts (the process ended mid-call) count at their worst-case price;
    ``reused`` answers (already paid in the run) cost nothing."""
    total["calls"] += 1
    total["failed"] += row["outcome"] in FAILED
    total["lost"] += row["outcome"] == "lost"
    total["reused"] += row["outcome"] == "reused"
    for key in USAGE_KINDS:
        total[key] += row[key] or 0
    total["cost_usd"] += row["cost_usd"] or 0.0


def _finish(total: dict) -> dict:
    prompt = total["input_tokens"] + total["cache_creation_input_tokens"] + total["cache_read_input_tokens"]
    total["cache_hit_share"] = round(total["cache_read_input_tokens"] / prompt, 4) if prompt else 0.0
    total["cost_usd"] = round(total["cost_usd"], 6)
    return total


class _Bucket:
    def __init__(self):
        self.all = _empty()
        self.by_backend: dict[str, dict] = defaultdict(_empty)

    def add(self, row: dict) -> None:
        _add(self.all, row)
        _add(self.by_backend[row["backend"]], row)

    def out(self) -> dict:
        return {**_finish(self.all), "by_backend": {b: _finish(v) for b, v in sorted(self.by_backend.items())}}


def usage_report(calls: list[dict]) -> dict:
    total, agents, weeks = _Bucket(), defaultdict(_Bucket), defaultdict(_Bucket)
    for row in calls:
        total.add(row)
        agents[row["agent_id"] or "-"].add(row)
        if row["week"] is not None:
            weeks[row["week"]].add(row)
    return {
        "total": total.out(),
        "agents": [{"id": a, **b.out()} for a, b in sorted(agents.items())],
        "weeks": [{"week": w, **b.out()} for w, b in sorted(weeks.items())],
    }


def render_usage(report: dict) -> str:
    head = f"{'':34} {'backend':8} {'calls':>6} {'failed':>6} {'input':>9} {'output':>8} {'cache_w':>8} {'cache_r':>9} {'hit%':>6} {'USD':>10}"
    lines = [head, "-" * len(head)]

    def emit(label: str, bucket: dict) -> None:
        for backend, v in bucket["by_backend"].items():
            lines.append(
                f"{label[:34]:34} {backend:8} {v['calls']:>6} {v['failed']:>6} {v['input_tokens']:>9} "
                f"{v['output_tokens']:>8} {v['cache_creation_input_tokens']:>8} {v['cache_read_input_tokens']:>9} "
                f"{v['cache_hit_share'] * 100:>5.1f}% {v['cost_usd']:>10.4f}"
            )
            label = ""

    for agent in report["agents"]:
        emit(agent["id"], agent)
    lines.append("")
    for week in report["weeks"]:
        emit(f"week {week['week']}", week)
    lines.append("")
    emit("TOTAL", report["total"])
    t = report["total"]
    lines.append(f"total: {t['calls']} calls, cache hit share {t['cache_hit_share'] * 100:.1f}%, ${t['cost_usd']:.4f}"
                 + (f"; {t['lost']} lost mid-call (counted at their worst case)" if t["lost"] else "")
                 + (f"; {t['reused']} answers reused, not paid again" if t["reused"] else ""))
    return "\n".join(lines)
