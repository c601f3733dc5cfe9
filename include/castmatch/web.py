"""The Control Center's FastAPI app, mounted by ``plugins/castmatch_control_center.py`` inside
Airflow's API server at ``/castmatch``: the page, its script and styles (served here, no CDN) and
the JSON it refreshes from. Every route needs a logged-in Airflow user: Airflow's own security
dependency reads the same cookie or Bearer token as the UI, so an anonymous request gets 401/403.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
ASSETS = {"control_center.js": "text/javascript", "control_center.css": "text/css"}


def create_app():
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, Response

    app = FastAPI(title="CastMatch Control Center", dependencies=[Depends(requires_authenticated())],
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/control-center", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "control_center.html").read_text(), headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(status_code=404, detail=f"no asset {name!r}")
        return Response((STATIC / name).read_text(), media_type=ASSETS[name])

    @app.get("/api/snapshot")
    def api_snapshot(run_key: str | None = None, dag_id: str | None = None, run_id: str | None = None) -> dict:
        from castmatch.config import load_roadmap_cached
        from castmatch.control_center import resolve_dag_run, snapshot
        from castmatch.runs import roadmap_id_of
        from castmatch.store import Store

        config = load_roadmap_cached()
        store = Store()
        if not run_key and dag_id and run_id:  # the "CastMatch" tab of a DAG run
            run_key = resolve_dag_run(store, roadmap_id_of(config), dag_id, run_id)
            if run_key is None:
                raise HTTPException(status_code=404, detail=f"DAG run {dag_id}/{run_id} is not a run of the roadmap "
                                                            f"{roadmap_id_of(config)!r} (nothing of it is stored)")
        try:
            return snapshot(config, store, run_key or None)
        except LookupError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    return app


class LazyApp:
    """The app as an ASGI callable built on its first request. Every Airflow process loads plugins
    (a task's template context, the DAG processor), and only the API server serves this: the others
    must not pay for FastAPI and Airflow's security imports (about 2 s a process)."""

    def __init__(self) -> None:
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)
