"""The distributed stack users start with Docker (none here to run it): every Airflow service of
docker-compose.yaml builds the project's image, shares the .env file and the common environment,
and has a health check; the image installs what the DAGs need with the pinned constraints."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def shared_env() -> dict[str, str]:
    """config/celery.env and config/scheduler.env, the settings compose and scripts/celery_stack.sh
    both read (make run and the tests' Airflow read the scheduler's too)."""
    from tests.airflow_stack import env_file

    return {**env_file(ROOT / "config" / "celery.env"), **env_file(ROOT / "config" / "scheduler.env")}


def airflow_services(spec: dict) -> dict:
    return {name: svc for name, svc in spec["services"].items() if name.startswith("airflow-") or name == "flower"}


class TestComposeStack:
    def test_every_airflow_service_builds_the_image_shares_the_env_and_has_a_health_check(self):
        spec = compose()
        services = airflow_services(spec)
        assert {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                "airflow-triggerer", "airflow-worker", "flower"} <= set(services)
        shared = shared_env()
        assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        for name, svc in services.items():
            assert svc.get("build") == ".", name
            # the topology, the scheduler settings every Airflow of ours ships, then the secrets
            assert svc.get("env_file") == ["config/celery.env", "config/scheduler.env", ".env"], name
            env = svc["environment"]
            assert not set(env) & set(shared), f"{name} repeats config/*.env"  # one source of truth
            assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/"), name
            assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name
            if name == "airflow-init":  # one-shot: the others wait for it to complete
                assert svc["restart"] == "no"
                continue
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
            assert svc["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name
        for name in ("postgres", "redis"):
            assert spec["services"][name]["healthcheck"]["test"], name
        assert services["flower"]["profiles"] == ["flower"]

    def test_no_secret_is_in_the_compose_file_and_the_env_template_names_them(self):
        text = (ROOT / "docker-compose.yaml").read_text()
        for secret in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
            assert f"{secret}:" not in text  # from .env only
            assert f"{secret}=" in (ROOT / ".env.example").read_text()
        assert ".env" in (ROOT / ".gitignore").read_text().split()

    def test_the_image_installs_the_pinned_requirements_the_package_and_the_preload(self):
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert dockerfile.startswith("#") and "FROM apache/airflow:3.3.2-python3.11" in dockerfile
        assert "-r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt" in dockerfile
        assert "pip install --no-cache-dir --no-deps -e /opt/airflow" in dockerfile
        for folder in ("include", "config", "dags", "plugins"):
            assert f"COPY --chown=airflow:root {folder} /opt/airflow/{folder}" in dockerfile
        requirements = (ROOT / "requirements.txt").read_text().split()
        constraints = (ROOT / "constraints.txt").read_text().split()
        celery = next(r for r in requirements if r.startswith("apache-airflow-providers-celery=="))
        assert celery in constraints and any(c.startswith("celery==") for c in constraints)

    def test_workers_listen_on_every_queue_of_the_roadmap_and_the_script_reads_the_same_env(self):
        worker = airflow_services(compose())["airflow-worker"]
        assert worker["command"][-1] == 'exec airflow celery worker --queues "$$(castmatch queues)"'
        script = (ROOT / "scripts" / "celery_stack.sh").read_text()
        assert "config/celery.env" in script and "config/scheduler.env" in script and "--celery-hostname" in script
        shared = shared_env()
        assert shared["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "True"
        assert int(shared["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) >= 6 * 3600
