#!/usr/bin/env bash
# Restarts one backing server of the local platform: stop it, then up.sh starts what is missing.
# Usage: restart.sh postgres|redis-server|bao|ferretdb. Used by `make soak` (each backend restarted once);
# Redis comes back without its ACL users and OpenBao (dev mode) empty, which the operator repairs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

part=${1:-}
case $part in
  postgres) signal=INT ;;  # "fast" shutdown; TERM would wait for every client to disconnect
  redis-server | bao | ferretdb) signal=TERM ;;
  *) die "usage: restart.sh postgres|redis-server|bao|ferretdb" ;;
esac
(
  exec 8>"$STATE/lock"
  flock -w 120 8 || die "another platform up/down holds $STATE/lock"
  stop_pid "$part" 20 "$signal"
)
TENANCY_RESTARTING=1 bash "$(dirname "${BASH_SOURCE[0]}")/up.sh" >/dev/null
log "restarted $part"
