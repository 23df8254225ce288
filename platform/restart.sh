#!/usr/bin/env bash
# Restarts one backing server of the local platform: stop it, then up.sh starts what is missing.
# Usage: restart.sh postgres|redis-server|bao|ferretdb|opensearch|etcd|kube-apiserver. Used by `make soak` (each
# backend restarted once) and `make chaos` (every part, at random moments); Redis comes back without its ACL users
# and OpenBao (dev mode) empty, which the operator repairs. etcd keeps its data folder, FerretDB its data in
# PostgreSQL, OpenSearch its data folder (up.sh waits until it is healthy again: 17-27 s in all, at most 120 s); while
# the API server's etcd is down it answers errors, and the controller manager and the operator reconnect to a
# restarted API server.
# A part that is not running is refused (exit 1, naming it): "restarting" it would only start it, and a fault
# test would count a restart that never happened.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

part=${1:-}
case $part in
  postgres) signal=INT ;;  # "fast" shutdown; TERM would wait for every client to disconnect
  redis-server | bao | ferretdb | etcd) signal=TERM ;;
  opensearch) signal=TERM grace=30 ;;  # as down.sh stops it; the JVM flushes and closes its shards
  kube-apiserver) signal=TERM grace=5 ;;  # it would wait up to a minute for open watches: then SIGKILL
  *) die "usage: restart.sh postgres|redis-server|bao|ferretdb|opensearch|etcd|kube-apiserver" ;;
esac
(
  exec 8>"$STATE/lock"
  flock -w 120 8 || die "another platform up/down holds $STATE/lock"
  pid_alive "$part" || die "$part is not running ($RUN/$part.pid names no live $part process): refusing to restart it; start the platform first (make up)"
  stop_pid "$part" "${grace:-20}" "$signal"
)
TENANCY_RESTARTING=1 bash "$(dirname "${BASH_SOURCE[0]}")/up.sh" >/dev/null
log "restarted $part"
