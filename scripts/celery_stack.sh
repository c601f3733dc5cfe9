#!/usr/bin/env bash
# docker-compose.yaml's CeleryExecutor topology on one machine, without Docker: on this machine's
# PostgreSQL and Redis, a fresh Airflow metadata database, then api-server, scheduler,
# dag-processor, triggerer and Celery workers as processes, with config/celery.env (the file the
# compose services read) and .env (secrets) when present.
#
#   scripts/celery_stack.sh start    # fresh databases, every process started; prints the UI URL
#   scripts/celery_stack.sh status   # each process: running or not
#   scripts/celery_stack.sh stop     # stops every process by its pid (SIGTERM, then SIGKILL)
#   scripts/celery_stack.sh clean    # stop, then drop the stack's databases and broker keys
#   scripts/celery_stack.sh run CMD  # CMD in the stack's environment (airflow ..., celery ..., castmatch ...)
#
# Settings (environment, defaults in brackets):
#   CELERY_STACK_DIR    pids, logs, Airflow home [.celery-stack]
#   CELERY_STACK_NAME   names the databases (<name>_airflow, <name>_store) and the broker's key prefix [cmstack]
#   CELERY_STACK_PORT   the API server (UI) [8081]
#   CELERY_STACK_PG     PostgreSQL admin URL [postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
#   CELERY_STACK_REDIS  the broker [redis://127.0.0.1:6379/0]
#   CELERY_WORKERS      "name:queue,queue name:queue ..." [two workers, worker-a and worker-b, each on
#                       every queue of the roadmap (castmatch queues)]
#   CASTMATCH_DATABASE_URL  the CastMatch store [a fresh <name>_store database]
# Any AIRFLOW__* / CASTMATCH_* / AIRFLOW_CONN_* variable set in the environment wins over the files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
export PATH=$BIN:$PATH
COMMAND=${1:-}
DIR=$(mkdir -p "${CELERY_STACK_DIR:-$ROOT/.celery-stack}" && cd "${CELERY_STACK_DIR:-$ROOT/.celery-stack}" && pwd)
NAME=${CELERY_STACK_NAME:-cmstack}
PORT=${CELERY_STACK_PORT:-8081}
PG_ADMIN=${CELERY_STACK_PG:-postgresql+psycopg2://postgres@127.0.0.1:5432/postgres}
PG_BASE=${PG_ADMIN%/*}
BROKER=${CELERY_STACK_REDIS:-redis://127.0.0.1:6379/0}
PIDS=$DIR/pids
LOGS=$DIR/logs

# KEY=VALUE lines of a compose env file, exported unless the environment already has the key.
load_env_file() {
  local key value
  [ -f "$1" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    [ -n "${!key+x}" ] || export "$key=$value"
  done < "$1"
}

# A running process of the stack: its pid file names a live process.
alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

database() {  # create|drop NAME on the local PostgreSQL
  python - "$PG_ADMIN" "$1" "$2" <<'PY'
import sys
import sqlalchemy as sa
admin, action, name = sys.argv[1:]
engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if action == "create":
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
PY
}

drop_broker_keys() {  # the stack's keys on the broker (they carry its name)
  python -c "import redis, sys; r = redis.Redis.from_url(sys.argv[1]); [r.delete(k) for k in r.scan_iter(sys.argv[2] + '*')]" \
    "$BROKER" "$NAME:"
}

stop() {
  local name pid
  for file in "$PIDS"/*.pid; do
    [ -f "$file" ] || continue
    name=$(basename "$file" .pid)
    pid=$(cat "$file")
    # each process leads its own process group (setsid): its children go with it
    kill -TERM -- "-$pid" 2>/dev/null && echo "== stopping $name (pid $pid)"
  done
  for _ in $(seq 1 40); do
    local left=0
    for file in "$PIDS"/*.pid; do
      [ -f "$file" ] && kill -0 -- "-$(cat "$file")" 2>/dev/null && left=1
    done
    [ $left = 0 ] && break
    sleep 0.5
  done
  for file in "$PIDS"/*.pid; do
    [ -f "$file" ] || continue
    kill -KILL -- "-$(cat "$file")" 2>/dev/null && echo "== killed $(basename "$file" .pid) (did not stop in 20 s)"
    rm -f "$file"
  done
}

status() {
  local state=0
  for name in api-server scheduler dag-processor triggerer $(ls "$PIDS" 2>/dev/null | sed -n 's/^\(worker-.*\)\.pid$/\1/p'); do
    if alive "$name"; then echo "$name: running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name: not running"; state=1; fi
  done
  return $state
}

launch() {  # NAME COMMAND...: in its own session (its own process group), pid in $PIDS/NAME.pid
  local name=$1
  shift
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}

load_env_file "$ROOT/config/celery.env"
load_env_file "$ROOT/config/scheduler.env"
load_env_file "$ROOT/.env"
export AIRFLOW_HOME=$DIR/home
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$PG_BASE/${NAME}_airflow
export AIRFLOW__CELERY__RESULT_BACKEND=db+$PG_BASE/${NAME}_airflow
export AIRFLOW__CELERY__BROKER_URL=$BROKER
# the broker's keys carry the stack's name: two stacks (or a test's) on one Redis never meet
export AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=$NAME:
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$PORT/execution/
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/passwords.json
export PYTHONPATH=$ROOT/config${PYTHONPATH:+:$PYTHONPATH}
export CASTMATCH_DATABASE_URL=${CASTMATCH_DATABASE_URL:-$PG_BASE/${NAME}_store}
# one JWT secret for the API server and every worker: .env's, else one made for this stack
[ "${AIRFLOW__API_AUTH__JWT_SECRET:-}" != change-me ] || unset AIRFLOW__API_AUTH__JWT_SECRET
if [ -z "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ] && [ -f "$DIR/jwt_secret" ]; then
  AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$DIR/jwt_secret")
  export AIRFLOW__API_AUTH__JWT_SECRET
fi

case "$COMMAND" in
  start)
    if alive scheduler || alive api-server; then echo "the stack in $DIR is running: stop it first" >&2; exit 1; fi
    mkdir -p "$PIDS" "$LOGS" "$AIRFLOW_HOME" "$DIR/celery"
    if [ -z "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ]; then
      python -c "import secrets; print(secrets.token_urlsafe(48))" > "$DIR/jwt_secret"
      AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$DIR/jwt_secret")
      export AIRFLOW__API_AUTH__JWT_SECRET
    fi
    [ -f "$AIRFLOW_HOME/passwords.json" ] || echo '{"admin": "admin"}' > "$AIRFLOW_HOME/passwords.json"
    echo "== fresh Airflow metadata database ${NAME}_airflow"
    database create "${NAME}_airflow"
    airflow db migrate > "$LOGS/migrate.log" 2>&1 || { tail -n 30 "$LOGS/migrate.log"; exit 1; }
    if [ -z "${CELERY_STACK_KEEP_STORE:-}" ] && [ "$CASTMATCH_DATABASE_URL" = "$PG_BASE/${NAME}_store" ]; then
      echo "== fresh CastMatch store ${NAME}_store"
      database create "${NAME}_store"
    fi
    castmatch db upgrade > "$LOGS/store.log" 2>&1 || { tail -n 30 "$LOGS/store.log"; exit 1; }
    castmatch airflow-settings load "$ROOT/airflow_settings.yaml" > /dev/null
    drop_broker_keys  # the leftovers of an earlier stack of this name
    launch api-server airflow api-server
    launch scheduler airflow scheduler
    launch dag-processor airflow dag-processor
    launch triggerer airflow triggerer
    QUEUES=$(castmatch queues)
    for spec in ${CELERY_WORKERS:-worker-a:$QUEUES worker-b:$QUEUES}; do
      worker=${spec%%:*}
      # distinct names on one host: Celery's (--celery-hostname) and the one task instances record;
      # logs are files in the shared home here, so the workers' log servers are not needed
      CASTMATCH_WORKER_HOSTNAME=$worker launch "$worker" airflow celery worker --celery-hostname "$worker@$(hostname)" \
        --queues "${spec#*:}" --concurrency "${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}" \
        --pid "$DIR/celery/$worker.pid" --skip-serve-logs
      echo "== $worker on queues ${spec#*:}"
    done
    for _ in $(seq 1 120); do
      curl -fs "http://localhost:$PORT/api/v2/monitor/health" > /dev/null 2>&1 && break
      alive api-server || { tail -n 30 "$LOGS/api-server.log"; exit 1; }
      sleep 1
    done
    curl -fs "http://localhost:$PORT/api/v2/monitor/health" > /dev/null || { echo "the API server did not answer" >&2; exit 1; }
    echo "== the stack is up: http://localhost:$PORT (admin / admin), logs in $LOGS, stop: $0 stop"
    ;;
  stop)
    stop
    ;;
  status)
    status
    ;;
  run)  # a command in the stack's environment, e.g. `run airflow dags list` or `run celery ... inspect active`
    shift
    exec "$@"
    ;;
  clean)
    stop
    database drop "${NAME}_airflow"
    [ "$CASTMATCH_DATABASE_URL" = "$PG_BASE/${NAME}_store" ] && database drop "${NAME}_store"
    drop_broker_keys
    rm -rf "$DIR"
    ;;
  *)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
