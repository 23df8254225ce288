#!/usr/bin/env bash
# Starts or stops the operator as a background process against the local platform (make demo).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
state=$repo/.platform
pidfile=$state/operator.pid
case ${1:-} in
  start)
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "operator already running (pid $(cat "$pidfile"))"; exit 0; fi
    mkdir -p "$state/logs"
    TENANCY_VERIFY_INTERVAL=${TENANCY_VERIFY_INTERVAL:-30} TENANCY_LIVENESS=http://127.0.0.1:18080/healthz \
      nohup "$repo/.venv/bin/tenancy-operator" >"$state/logs/operator.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
      curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && { echo "operator running (pid $(cat "$pidfile"))"; exit 0; }
      kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.5
    done
    echo "operator did not become healthy; last lines of $state/logs/operator.log:" >&2
    tail -20 "$state/logs/operator.log" >&2; exit 1 ;;
  stop)
    [[ -f $pidfile ]] || exit 0
    pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
