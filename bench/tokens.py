"""Prompt caching over the whole roadmap: all twelve weeks' work units, in dependency order, through
the live backend against the fake Messages API server (which reports cache writes and reads as the
API does), with our layout (stable prefix marked ``cache_control``) and with a naive layout (the
same text, no cache mark). Answers have a realistic size: each is the offline backend's full
deliverable for that unit (about 1,000 output tokens), so quoted upstream work costs what it would.

Prints, per week and in total, the share of input tokens in the cacheable prefix, the cache hit
share and the cost with and without caching; last, the cost ratio ours/naive over weeks 1-12.
The fake's cache never expires (the API's lasts 5 minutes), so the hit share is an upper bound
for agents that work less often than that.
"""

from __future__ import annotations

from _common import llm_bench_env


def run_roadmap(config, server, cache: bool) -> dict[int, dict]:
    from castmatch.llm.backends import OfflineBackend
    from castmatch.llm.claude import ClaudeBackend
    from castmatch.llm.prompt import build_request
    from castmatch.store import Store
    from castmatch.usage import usage_report

    class NoCacheBackend(ClaudeBackend):
        def _body(self, request, model, messages, tool=None):
            body = super()._body(request, model, messages, tool)
            body["system"] = [{"type": "text", "text": request.system_prefix}]
            return body

    store = Store()
    backend = (ClaudeBackend if cache else NoCacheBackend)("live", settings=config.llm, store=store)
    offline = OfflineBackend()
    delivered: dict[str, dict] = {}
    per_week: dict[int, dict] = {}
    for week in sorted(config.weeks):
        before = len(store.llm_calls())
        for unit in config.weeks[week].work_units:  # each file lists its units in dependency order
            upstream = {d: delivered[d] for d in unit.depends_on if d in delivered}
            request = build_request(config, unit, upstream, week=week)
            answer = offline.generate(request).deliverable.model_dump()
            answer.update(status="done", blockers=[], progress=100)  # every upstream is delivered here
            server.responder = lambda body, answer=answer: answer
            result = backend.generate(request)
            delivered[unit.id] = {"agent_id": unit.agents[0], **result.deliverable.model_dump()}
        per_week[week] = usage_report(store.llm_calls()[before:])["total"]
    return per_week


def shares(total: dict) -> tuple[float, float]:
    prompt = total["input_tokens"] + total["cache_creation_input_tokens"] + total["cache_read_input_tokens"]
    prefix = total["cache_creation_input_tokens"] + total["cache_read_input_tokens"]
    return prefix / prompt, total["cache_read_input_tokens"] / prompt


def main() -> None:
    with llm_bench_env(0.0) as server:
        from castmatch.config import load_roadmap

        config = load_roadmap()
        ours = run_roadmap(config, server, cache=True)
        server.reset()  # a cold cache for the naive run, as a separate deployment would have
        naive = run_roadmap(config, server, cache=False)
    units = len(config.work_units)
    print(f"compared: all {units} work units of weeks 1-12 through the live backend (fake Messages API), prompts "
          "with the stable prefix marked cache_control vs the same prompts unmarked; answers: the offline "
          "backend's deliverable of each unit; no clock (direct calls, back to back)")
    print(f"{'week':>4} {'calls':>5} {'out tok/unit':>12} {'prefix share':>12} {'cache hits':>10} "
          f"{'USD ours':>9} {'USD naive':>9} {'ratio':>6}")
    for week in sorted(ours):
        o, n = ours[week], naive[week]
        prefix, hits = shares(o)
        print(f"{week:>4} {o['calls']:>5} {o['output_tokens'] / o['calls']:>12.0f} {prefix * 100:>11.1f}% "
              f"{hits * 100:>9.1f}% {o['cost_usd']:>9.4f} {n['cost_usd']:>9.4f} {o['cost_usd'] / n['cost_usd']:>6.2f}")
    keys = ("calls", "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
            "cost_usd")
    total_o = {k: sum(w[k] for w in ours.values()) for k in keys}
    total_n = {k: sum(w[k] for w in naive.values()) for k in keys}
    prefix, hits = shares(total_o)
    print(f"weeks 1-12: {total_o['calls']} calls, {total_o['output_tokens'] / total_o['calls']:.0f} output tokens a "
          f"deliverable; {prefix * 100:.1f}% of input tokens in the cacheable prefix (goal >= 80%), cache hit share "
          f"{hits * 100:.1f}%; cost ours ${total_o['cost_usd']:.4f}, naive ${total_n['cost_usd']:.4f}")
    print(f"ratio cost ours/naive (weeks 1-12): {total_o['cost_usd'] / total_n['cost_usd']:.2f}")


if __name__ == "__main__":
    main()
