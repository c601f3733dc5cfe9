"""Prompt caching on a simulated week: week 1's work units, in dependency order, through the live
backend against the fake server (which reports cache writes and reads as the API does), with our
layout (stable prefix marked cache_control) and with a naive layout (the same text, no cache mark).

Prints the share of input tokens in the cacheable prefix (goal: >= 80 %) and, last, the cost
ratio ours/naive.
"""

from __future__ import annotations

from _common import llm_bench_env


def run_week(config, cache: bool) -> dict:
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
    before = len(store.llm_calls())
    backend = (ClaudeBackend if cache else NoCacheBackend)("live", settings=config.llm, store=store)
    delivered: dict[str, dict] = {}
    for unit in config.weeks[1].work_units:  # the file lists them in dependency order
        upstream = {d: delivered[d] for d in unit.depends_on if d in delivered}
        result = backend.generate(build_request(config, unit, upstream, week=1))
        delivered[unit.id] = {"agent_id": unit.agents[0], **result.deliverable.model_dump()}
    return usage_report(store.llm_calls()[before:])["total"]


def main() -> None:
    with llm_bench_env(0.0) as server:
        from castmatch.config import load_roadmap

        config = load_roadmap()
        ours = run_week(config, cache=True)
        server.reset()  # a cold cache for the naive run, as a separate deployment would have
        naive = run_week(config, cache=False)
        prompt = ours["input_tokens"] + ours["cache_creation_input_tokens"] + ours["cache_read_input_tokens"]
        prefix = ours["cache_creation_input_tokens"] + ours["cache_read_input_tokens"]
        print(f"week 1: {ours['calls']} calls; input tokens {prompt}: {prefix} in the cacheable prefix "
              f"({ours['cache_creation_input_tokens']} written, {ours['cache_read_input_tokens']} read), "
              f"{ours['input_tokens']} after it")
        print(f"share of input tokens in the cacheable prefix: {prefix / prompt * 100:.1f}% (goal >= 80%)")
        print(f"cache hit share (read / all input): {ours['cache_hit_share'] * 100:.1f}%")
        print(f"cost: ours ${ours['cost_usd']:.4f}, naive ${naive['cost_usd']:.4f}")
        print(f"ratio cost ours/naive: {ours['cost_usd'] / naive['cost_usd']:.2f}")


if __name__ == "__main__":
    main()
