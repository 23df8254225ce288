#!/usr/bin/env bash
# Backfills history into the platform's Prometheus: OpenMetrics text -> TSDB blocks (promtool) ->
# the data dir, then restarts Prometheus so the blocks are queryable at once.
# Usage: backfill.sh FILE.om [FILE.om ...]    (hack/loadgen.py backfill writes such files)
# Prometheus 2.42 only picks up blocks dropped into its data dir on its one-minute reload loop; a
# restart (about 1 s, the head WAL is kept) loads them immediately. Blocks may overlap the head and
# each other (vertical merging is on by default since 2.39), so a series can continue live where
# its backfilled history ends. Samples older than the retention (30d) are dropped by Prometheus.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -ge 1 ]] || die "usage: backfill.sh FILE.om [FILE.om ...]"
command -v promtool >/dev/null || die "promtool not found (platform/install.sh apt installs it)"
[[ -d $STATE/prometheus/data ]] || die "$STATE/prometheus/data missing: run platform/up.sh first"

t0=$EPOCHREALTIME
work=$(mktemp -d "$STATE/prometheus/backfill.XXXXXX")
trap 'rm -rf "$work"' EXIT
for f in "$@"; do
  [[ -s $f ]] || die "$f: missing or empty"
  # OpenMetrics requires the closing '# EOF' line; promtool refuses a file without it.
  tail -n 1 "$f" | grep -qx '# EOF' || die "$f: the last line must be '# EOF'"
  promtool tsdb create-blocks-from openmetrics "$f" "$work" >"$work/promtool.log" 2>&1 ||
    { cat "$work/promtool.log" >&2; die "promtool could not convert $f"; }
done
n=0
for b in "$work"/*/; do
  [[ -f $b/meta.json ]] || continue
  mv "$b" "$STATE/prometheus/data/"
  n=$((n + 1))
done
log "backfill: $n block(s) moved into $STATE/prometheus/data"

(
  exec 8>"$STATE/lock"
  flock -w 120 8 || die "another platform up/down holds $STATE/lock"
  stop_pid prometheus 15
)
bash "$PLATFORM_SRC/up.sh" >/dev/null
printf 'backfill: %d block(s) loaded, prometheus restarted in %.1fs\n' "$n" "$(awk "BEGIN {print $EPOCHREALTIME - $t0}")"
