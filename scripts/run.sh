#!/usr/bin/env bash
# `make run`: Airflow standalone on :8080 with the CastMatch DAGs, on embedded defaults (SQLite for
# Airflow and for the CastMatch store unless CASTMATCH_DATABASE_URL is set), then the roadmap
# triggered on the compressed clock. Ctrl-C stops Airflow.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
export PATH=$BIN:$PATH
export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-4}
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/passwords.json
export PYTHONPATH=$ROOT/config${PYTHONPATH:+:$PYTHONPATH}
export CASTMATCH_CLOCK=${CASTMATCH_CLOCK:-compressed}
# The shipped scheduler settings (config/scheduler.env, chosen by bench/makespan.py --sweep); a
# variable already set wins.
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  key=${line%%=*}
  [ -n "${!key:-}" ] || export "$line"
done < config/scheduler.env
# The demo: KPIs with a demo_source measure the local demo product and the sample reports (labelled
# demo), and a criterion the offline backend cannot check (the Claude probe) is accepted, labelled.
export CASTMATCH_DEMO=${CASTMATCH_DEMO:-1}
export CASTMATCH_OFFLINE_CHECKS=${CASTMATCH_OFFLINE_CHECKS:-accept}
# Incident level 1 restarts a stopped local Redis (operations.yaml redis_connection_issues) with
# this command, run without a shell; docker-compose users get `docker restart` by default instead.
if [ -z "${CASTMATCH_REDIS_RESTART:-}" ] && command -v redis-server >/dev/null 2>&1; then
  export CASTMATCH_REDIS_RESTART="$(command -v redis-server) --port 6379 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no"
fi
DEMO_PORT=8765
PORT=${AIRFLOW__API__PORT:-8080}
mkdir -p "$AIRFLOW_HOME"
# A known local login (development only): admin / admin unless the file already says otherwise.
[ -f "$AIRFLOW_HOME/passwords.json" ] || echo '{"admin": "admin"}' > "$AIRFLOW_HOME/passwords.json"

echo "== Airflow metadata database ($AIRFLOW_HOME)"
airflow db migrate >/dev/null
echo "== CastMatch store"
castmatch db upgrade
castmatch validate || echo "!! the roadmap has errors: the DAGs built from broken files will show them"
# The roadmap's driver DAG (<dag_id_prefix>_roadmap): CASTMATCH_ROADMAP_DIR selects another team's roadmap.
DRIVER=$(python -c "from castmatch.config import load_roadmap; from castmatch.runs import driver_dag_id, roadmap_id_of
print(driver_dag_id(roadmap_id_of(load_roadmap())))" 2>/dev/null || echo castmatch_roadmap)
echo "== roadmap: ${CASTMATCH_ROADMAP_DIR:-include/roadmaps/castmatch} (driver DAG $DRIVER)"
echo "== connections, pools, variables"
castmatch airflow-settings load airflow_settings.yaml >/dev/null

DEMO_PID=
if [ "$CASTMATCH_DEMO" = "1" ]; then
  if curl -fs "http://127.0.0.1:$DEMO_PORT/health" >/dev/null 2>&1; then
    echo "== demo product already answering on 127.0.0.1:$DEMO_PORT"
  else
    echo "== demo product (simulated traffic, labelled demo) on 127.0.0.1:$DEMO_PORT"
    python -m castmatch.demo_service --port "$DEMO_PORT" > "$AIRFLOW_HOME/demo_service.log" 2>&1 &
    DEMO_PID=$!
  fi
fi

airflow standalone > "$AIRFLOW_HOME/standalone.log" 2>&1 &
AF_PID=$!
trap 'kill $AF_PID $DEMO_PID 2>/dev/null; wait $AF_PID 2>/dev/null' EXIT INT TERM
echo "== waiting for Airflow on http://localhost:$PORT (log: $AIRFLOW_HOME/standalone.log)"
for _ in $(seq 1 180); do
  curl -fs "http://localhost:$PORT/api/v2/monitor/health" >/dev/null 2>&1 && break
  kill -0 $AF_PID 2>/dev/null || { tail -n 40 "$AIRFLOW_HOME/standalone.log"; exit 1; }
  sleep 2
done
for _ in $(seq 1 90); do
  airflow dags list -o plain 2>/dev/null | grep -q "$DRIVER" && break
  sleep 2
done
airflow dags unpause "$DRIVER" >/dev/null
airflow dags trigger "$DRIVER" --conf '{"clock": "compressed"}'
USER_NAME=$(echo "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" | cut -d: -f1)
cat <<MSG

  CastMatch Orchestrator is running: http://localhost:$PORT
  Login: $USER_NAME / $(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], '?'))" "$AIRFLOW_HOME/passwords.json" "$USER_NAME")
  The roadmap ($DRIVER) is running on the compressed clock (1 s a roadmap day).
  Its live status: Browse -> Control Center in the Airflow navigation.
  From another terminal (same folder):
    export AIRFLOW_HOME=$AIRFLOW_HOME
    .venv/bin/castmatch status        # the agent status matrix of this run
    .venv/bin/castmatch gates         # gates, KPIs (demo sources labelled), decisions, extensions
    .venv/bin/castmatch runs          # every run of the roadmap
    .venv/bin/castmatch reviews       # anything waiting for a person, and the command that answers it
    .venv/bin/castmatch incidents     # incidents, their level on the ladder and every action taken
    .venv/bin/castmatch alerts        # trigger-based alerts: who was told, whether Slack got it
    .venv/bin/castmatch checkpoints   # the compressed days' checkpoints: figures, standup and workload actions
    .venv/bin/castmatch report --week 1   # week 1's stakeholder report: Markdown + PNG charts
    .venv/bin/castmatch answer TASK --option ... --reason ...
  Stop Redis (redis-cli shutdown) before week 1's gate: level 1 restarts it (castmatch incidents).
  Ctrl-C stops Airflow and the demo product.

MSG
wait $AF_PID
