#!/usr/bin/env bash
# The operator's least-privileged admins on the platform's servers, as a cautious production install
# has them (docs/backend-admins.md): a PostgreSQL role with CREATEDB CREATEROLE and no superuser, a
# Redis ACL user `tenancy-operator` (not `default`), and (when platform/admins/openbao-operator.hcl
# is there) an OpenBao AppRole holding only the tenant policy. Made with the servers' own superuser,
# root token and `default` user, which it leaves as they are. Idempotent: run by up.sh on every up,
# and safe to run again by hand against a running platform. Writes .platform/admins.env.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ADMINS=$PLATFORM_SRC/admins
PGBIN=$(pg_bindir) || die "PostgreSQL binaries not found"
PG_PASSWORD=$(secret postgres-password)
REDIS_PASSWORD=$(secret redis-password)
BAO_TOKEN=$(secret bao-root-token)

PG_ADMIN=tenancy_admin
PG_ADMIN_PASSWORD=$(secret tenancy-pg-admin-password)
REDIS_ADMIN=tenancy-operator
REDIS_ADMIN_PASSWORD=$(secret tenancy-redis-admin-password)

# ---------------------------------------------------------------- PostgreSQL
PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
  -v admin="$PG_ADMIN" -v password="$PG_ADMIN_PASSWORD" -f "$ADMINS/postgres-operator.sql" >/dev/null ||
  die "postgres: could not make the operator's admin role $PG_ADMIN"

# ---------------------------------------------------------------- Redis
# One ACL SETUSER with `reset`: the user holds exactly the rules file, whatever it held before.
redis_rules() { sed -e 's/#.*//' "$ADMINS/redis-operator.rules" | awk 'NF {print $1}'; }
mapfile -t RULES < <(redis_rules)
REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" \
  ACL SETUSER "$REDIS_ADMIN" reset on ">$REDIS_ADMIN_PASSWORD" "${RULES[@]}" | grep -qx OK ||
  die "redis: could not make the operator's ACL user $REDIS_ADMIN"

# ---------------------------------------------------------------- .platform/admins.env
(umask 077; cat >"$STATE/admins.env.tmp" <<ENV
export TENANCY_PG_ADMIN_USER=$PG_ADMIN
export TENANCY_PG_ADMIN_PASSWORD=$PG_ADMIN_PASSWORD
export TENANCY_REDIS_ADMIN_USER=$REDIS_ADMIN
export TENANCY_REDIS_ADMIN_PASSWORD=$REDIS_ADMIN_PASSWORD
ENV
)
mv "$STATE/admins.env.tmp" "$STATE/admins.env"
log "least-privileged admins ready: postgres $PG_ADMIN, redis $REDIS_ADMIN ($STATE/admins.env)"
