"""``ChainHandoffOperator``: a dependency chain's action once its trigger assets are updated."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class ChainHandoffOperator(BaseOperator):
    """Notify the chain's agents with the artifacts they need (recorded as events, one per agent).

    The consuming work units read the same artifacts into their prompts when they run
    (``castmatch.chains.chain_artifacts``), so a handoff never depends on which ran first.
    """

    def __init__(self, *, chain_id: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chain_id = chain_id
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.chains import chains_report
        from castmatch.config import load_roadmap_cached
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        chain = next((c for c in config.operations.chains if c.id == self.chain_id), None)
        if chain is None:
            raise AirflowFailException(f"chain {self.chain_id!r} is not in {config.directory}/operations.yaml")
        run_key = self._run_key(context)
        if run_key is None:
            raise AirflowFailException(f"chain {chain.id}: no triggering asset event names its run (run_key)")
        store = Store()
        status = next(c for c in chains_report(config, store, run_key) if c["id"] == self.chain_id)
        ti = context["ti"]
        if status["status"] != "DONE":  # e.g. a trigger gate was judged but did not pass
            self.log.warning("chain %s in run %s: trigger does not hold (%s): nothing handed off", chain.id, run_key,
                             status["status"])
            return {"chain": chain.id, "run_key": run_key, "status": status["status"], "notified": []}
        delivered = [u["id"] for u in status["trigger_units"] if u["done"]]
        for agent_id in chain.action.notify:
            store.record_event(
                "chain_notify", f"{chain.name}: {chain.action.description}", run_key=run_key, dag_id=ti.dag_id,
                run_id=ti.run_id,
                agent_id=agent_id, data={"chain": chain.id, "artifacts": list(chain.action.artifacts),
                                         "from_units": delivered, "consumers": list(chain.action.consumers)},
            )
        self.log.info("chain %s (%s) in run %s: notified %s with %s", chain.id, status["status"], run_key,
                      ", ".join(chain.action.notify), ", ".join(chain.action.artifacts))
        from castmatch.alerts import on_chain_handoff

        on_chain_handoff(config, store, chain, run_key=run_key, dag_id=ti.dag_id, run_id=ti.run_id, delivered=delivered)
        return {"chain": chain.id, "run_key": run_key, "status": status["status"],
                "notified": list(chain.action.notify)}

    @staticmethod
    def _run_key(context) -> str | None:
        """The run whose delivery triggered this chain: the newest triggering asset event's run."""
        events = [e for accessor in (context.get("triggering_asset_events") or {}).values() for e in accessor]
        events.sort(key=lambda e: e.timestamp)
        keys = [(e.extra or {}).get("run_key") for e in events]
        return next((k for k in reversed(keys) if k), None)
