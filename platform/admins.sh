#!/usr/bin/env bash
# The operator's least-privileged admins on the platform's servers, as a cautious production install
# has them (docs/backend-admins.md): a PostgreSQL role with CREATEDB CREATEROLE and no superuser, a
# Redis ACL user `tenancy-operator` (not `default`), and an OpenBao AppRole whose tokens hold only
# the tenant-objects policy (charts/tenancy-operator/files/openbao-operator.hcl). Made with the servers' own superuser,
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

# ---------------------------------------------------------------- OpenBao
# The mounts, auth methods, Kubernetes auth config and tenant policies tenants rely on are the
# platform's to make (the operator's policy may not mount, configure or write a policy); then policy
# `tenancy-operator` and an AppRole with a fixed role and secret id (dev mode keeps nothing across a
# restart, so both come from .platform/secrets and are put back).
BAO_ADMIN_ROLE=tenancy-operator
BAO_ROLE_ID=$(secret tenancy-bao-role-id)
BAO_SECRET_ID=$(secret tenancy-bao-secret-id)
bao_() { BAO_ADDR=http://127.0.0.1:$BAO_PORT BAO_TOKEN=$BAO_TOKEN "$VENV_BIN/bao" "$@"; }
mounts=$(bao_ secrets list -format=json) || die "openbao: cannot list mounts"
for m in transit transit-sessions; do
  grep -q ""$m/"" <<<"$mounts" || bao_ secrets enable -path="$m" transit >/dev/null
done
grep -q '"tenants/"' <<<"$mounts" || bao_ secrets enable -path=tenants -version=2 kv >/dev/null
# The operator's audit trail: its signing key's transit mount and the KV mount of the signed head.
grep -q '"tenancy-audit/"' <<<"$mounts" || bao_ secrets enable -path=tenancy-audit transit >/dev/null
grep -q '"tenancy-audit-kv/"' <<<"$mounts" || bao_ secrets enable -path=tenancy-audit-kv -version=2 kv >/dev/null
auths=$(bao_ auth list -format=json) || die "openbao: cannot list auth methods"
grep -q '"kubernetes/"' <<<"$auths" || bao_ auth enable kubernetes >/dev/null
grep -q '"approle/"' <<<"$auths" || bao_ auth enable approle >/dev/null
# Kubernetes auth pointed at this cluster, with its own token reviewer (ServiceAccount openbao-auth,
# system:auth-delegator): the platform's to configure, as the operator's policy may only read it. Run
# again after an OpenBao restart (dev mode comes back empty), so tenants' logins come back too.
kc() { "$VENV_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
# The operator's namespace as manifests/namespace.yaml defines it: an `apply` of a bare namespace here
# removed the labels an earlier apply of that file had set (a 3-way merge drops what the last applied
# configuration had): after an OpenBao restart tenancy-system lost its platform and Pod Security labels.
kc apply -f "$REPO/manifests/namespace.yaml" >/dev/null
kc -n tenancy-system create serviceaccount openbao-auth --dry-run=client -o yaml | kc apply -f - >/dev/null
kc create clusterrolebinding openbao-auth-delegator --clusterrole=system:auth-delegator \
  --serviceaccount=tenancy-system:openbao-auth --dry-run=client -o yaml | kc apply -f - >/dev/null
reviewer=$(kc -n tenancy-system create token openbao-auth --duration=720h) || die "kubernetes: no token reviewer token"
ca=$(kc config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d)
bao_ write auth/kubernetes/config kubernetes_host="https://127.0.0.1:$APISERVER_PORT" kubernetes_ca_cert="$ca" \
  token_reviewer_jwt="$reviewer" disable_local_ca_jwt=true >/dev/null || die "openbao: could not configure auth/kubernetes"
# The fixed tenant policies the operator's login roles name: their paths follow the login's namespace,
# read from the alias of the `kubernetes/` auth method, whose accessor each server gives its own.
k8s_accessor=$(bao_ auth list -format=json | "$VENV_BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["kubernetes/"]["accessor"])') ||
  die "openbao: no accessor for auth method kubernetes/"
for part in kv transit session; do
  sed "s/@KUBERNETES_ACCESSOR@/$k8s_accessor/g" "$REPO/charts/tenancy-operator/files/openbao-tenant-$part.hcl" |
    bao_ policy write "tenancy-tenant-$part" - >/dev/null || die "openbao: could not write policy tenancy-tenant-$part"
done
bao_ policy write tenancy-operator "$REPO/charts/tenancy-operator/files/openbao-operator.hcl" >/dev/null
# A 1-hour token the operator renews itself, and logs in again for once the 24-hour maximum nears.
bao_ write auth/approle/role/$BAO_ADMIN_ROLE token_policies=tenancy-operator token_no_default_policy=true \
  token_ttl=1h token_max_ttl=24h secret_id_ttl=0 secret_id_num_uses=0 >/dev/null
bao_ write auth/approle/role/$BAO_ADMIN_ROLE/role-id role_id="$BAO_ROLE_ID" >/dev/null
# OpenBao locks a role out for 15 minutes after 5 failed logins (user lockout), and then refuses the right
# secret too. A running operator fails its logins while a restarted OpenBao (dev mode: empty) waits for the
# lines here, so `make chaos` saw the AppRole locked for good: unlock it before and after making its secret.
approle=$(bao_ auth list -format=json | "$VENV_BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["approle/"]["accessor"])') ||
  die "openbao: no accessor for auth method approle/"
unlock() { bao_ write -f "sys/locked-users/$approle/unlock/$BAO_ROLE_ID" >/dev/null || die "openbao: could not unlock AppRole $BAO_ADMIN_ROLE"; }
unlock
bao_ write -field=token auth/approle/login role_id="$BAO_ROLE_ID" secret_id="$BAO_SECRET_ID" >/dev/null 2>&1 ||
  bao_ write auth/approle/role/$BAO_ADMIN_ROLE/custom-secret-id secret_id="$BAO_SECRET_ID" >/dev/null ||
  die "openbao: could not make the operator's AppRole $BAO_ADMIN_ROLE"
unlock

# ---------------------------------------------------------------- .platform/admins.env
(umask 077; cat >"$STATE/admins.env.tmp" <<ENV
export TENANCY_PG_ADMIN_USER=$PG_ADMIN
export TENANCY_PG_ADMIN_PASSWORD=$PG_ADMIN_PASSWORD
export TENANCY_REDIS_ADMIN_USER=$REDIS_ADMIN
export TENANCY_REDIS_ADMIN_PASSWORD=$REDIS_ADMIN_PASSWORD
export TENANCY_BAO_ROLE_ID=$BAO_ROLE_ID
export TENANCY_BAO_SECRET_ID=$BAO_SECRET_ID
ENV
)
mv "$STATE/admins.env.tmp" "$STATE/admins.env"
log "least-privileged admins ready: postgres $PG_ADMIN, redis $REDIS_ADMIN, openbao AppRole $BAO_ADMIN_ROLE ($STATE/admins.env)"
