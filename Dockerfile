# The image every Airflow service of docker-compose.yaml runs: the stock Airflow image plus what
# the DAGs need (providers, anthropic, Great Expectations, the castmatch package and its roadmaps),
# the parse-time preload (config/airflow_local_settings.py) and the Control Center plugin.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt constraints.txt /opt/airflow/
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt

COPY --chown=airflow:root pyproject.toml airflow_settings.yaml /opt/airflow/
COPY --chown=airflow:root include /opt/airflow/include
COPY --chown=airflow:root config /opt/airflow/config
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
# the `castmatch` command; the package itself is /opt/airflow/include (editable: roadmaps beside it)
RUN pip install --no-cache-dir --no-deps -e /opt/airflow
