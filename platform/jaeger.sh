#!/usr/bin/env bash
# Jaeger, the local platform's trace store: the operator exports spans to it over OTLP/HTTP when
# TENANCY_OTLP_ENDPOINT is set, and tests read them back through its query API.
# Usage: jaeger.sh install|start|stop|status   (install.sh, up.sh, down.sh and status.sh call it)
#   install: builds cmd/jaeger of github.com/jaegertracing/jaeger@$JAEGER_VERSION from its Go module
#            into the per-version cache (build-go-tool.sh), like etcd and the kube binaries. About 2300
#            packages: on a machine shared with other work, GOFLAGS=-p=1 keeps it to one core.
#   start  : in-memory storage (nothing on disk; a restart forgets every trace), loopback only:
#            OTLP/HTTP on $JAEGER_OTLP_PORT, the UI and query API (/api/traces) on $JAEGER_QUERY_PORT.
#            Idempotent (a running one is only health-checked). Writes .platform/jaeger.env.
#   stop   : stops it.
# The module's tag v1.x carries Jaeger v2 (an OpenTelemetry Collector build): cmd/jaeger, configured
# by one YAML file with only the receiver and extensions named below, so it opens no other port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JAEGER_STATE=$STATE/jaeger
# Bounded memory: the oldest traces go first. A verify pass every few seconds per tenant adds up.
JAEGER_MAX_TRACES=${JAEGER_MAX_TRACES:-20000}

install_jaeger() {
  local start=$SECONDS log=$CACHE/build/jaeger-$JAEGER_VERSION.log
  if [[ -x $JAEGER_BIN ]]; then log "jaeger $JAEGER_VERSION: cached"; return; fi
  command -v go >/dev/null || die "go is not on PATH; it is needed to build jaeger"
  log "jaeger $JAEGER_VERSION: building (minutes; log in $log)"
  mkdir -p "$CACHE/build"
  if ! "$PLATFORM_SRC/build-go-tool.sh" jaeger "github.com/jaegertracing/jaeger@$JAEGER_VERSION" \
       github.com/jaegertracing/jaeger/cmd/jaeger \
       "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION" >/dev/null 2>"$log"; then
    tail -n 30 "$log" >&2
    die "build of jaeger $JAEGER_VERSION failed (full log: $log)"
  fi
  log "jaeger $JAEGER_VERSION: built in $((SECONDS - start))s"
}

write_config() {
  mkdir -p "$JAEGER_STATE"
  cat >"$JAEGER_STATE/config.yaml" <<EOF
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource: {service.name: jaeger}
    metrics: {level: none}
    logs: {level: warn}
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory: {max_traces: $JAEGER_MAX_TRACES}
  jaeger_query:
    storage: {traces: memory_store}
    enable_tracing: false
    http: {endpoint: "127.0.0.1:$JAEGER_QUERY_PORT"}
    grpc: {endpoint: "127.0.0.1:$JAEGER_QUERY_GRPC_PORT"}
receivers:
  otlp:
    protocols:
      http: {endpoint: "127.0.0.1:$JAEGER_OTLP_PORT"}
processors:
  batch: {timeout: 200ms}
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
EOF
}

jaeger_ready() { curl -fsS "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" >/dev/null; }

start_jaeger() {
  [[ -x $JAEGER_BIN ]] || die "jaeger $JAEGER_VERSION missing: run platform/install.sh jaeger"
  mkdir -p "$RUN" "$LOGS"
  write_config
  local t0=$EPOCHREALTIME was="already running"
  if ! pid_alive jaeger; then
    local port
    for port in $JAEGER_OTLP_PORT $JAEGER_QUERY_PORT $JAEGER_QUERY_GRPC_PORT; do
      port_listening "$port" && die "jaeger: port 127.0.0.1:$port is taken by another process"
    done
    printf -- '---- %s jaeger.sh: starting jaeger\n' "$(date -u +%FT%TZ)" >>"$LOGS/jaeger.log"
    (cd "$STATE" && close_inherited_fds && exec setsid "$JAEGER_BIN" --config "$JAEGER_STATE/config.yaml" \
      </dev/null >>"$LOGS/jaeger.log" 2>&1) &
    echo $! >"$RUN/jaeger.pid"
    await_exec jaeger
    was=started
  fi
  local deadline=$((SECONDS + 30))
  until jaeger_ready 2>/dev/null; do
    if ! pid_alive jaeger; then
      tail -n 25 "$LOGS/jaeger.log" >&2; die "jaeger exited during start-up (log: $LOGS/jaeger.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 25 "$LOGS/jaeger.log" >&2; die "jaeger not healthy after 30s"; }
    sleep 0.1
  done
  (umask 077; cat >"$STATE/jaeger.env" <<EOF
export JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT
export JAEGER_OTLP_URL=http://127.0.0.1:$JAEGER_OTLP_PORT
EOF
  )
  if [[ $was == started ]]; then
    log "jaeger: ready $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}")s after its start"
  fi
}

case ${1:-} in
  install) install_jaeger ;;
  start) start_jaeger ;;
  stop) stop_pid jaeger 10 ;;
  status) jaeger_ready ;;
  *) die "usage: jaeger.sh install|start|stop|status" ;;
esac
