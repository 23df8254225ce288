#!/usr/bin/env bash
# Creates the Backends' admin Secrets in tenancy-system from the local platform's credentials, and a
# token reviewer ServiceAccount for OpenBao's Kubernetes auth, which it configures as the platform admin
# (root token: the operator's policy may not). Idempotent. Needs `source .platform/env`.
set -euo pipefail
ns=tenancy-system
# As manifests/namespace.yaml defines it (platform and restricted Pod Security labels): an apply of a
# bare namespace would drop labels an earlier apply of that file set.
kubectl apply -f "$(dirname "${BASH_SOURCE[0]}")/../manifests/namespace.yaml" >/dev/null
kubectl -n "$ns" create serviceaccount openbao-auth --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create clusterrolebinding openbao-auth-delegator --clusterrole=system:auth-delegator \
  --serviceaccount="$ns:openbao-auth" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
reviewer=$(kubectl -n "$ns" create token openbao-auth --duration=720h)
ca=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d)
apply_secret() { kubectl -n "$ns" create secret generic "$1" "${@:2}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
# The operator's least-privileged admins (platform/admins.sh, docs/backend-admins.md), not the
# servers' superuser, `default` user and root token.
[[ -n ${TENANCY_PG_ADMIN_USER:-} ]] || source "$TENANCY_PLATFORM_DIR/admins.env"
apply_secret pg-main-admin --from-literal=username="$TENANCY_PG_ADMIN_USER" --from-literal=password="$TENANCY_PG_ADMIN_PASSWORD"
apply_secret redis-main-admin --from-literal=username="$TENANCY_REDIS_ADMIN_USER" \
  --from-literal=password="$TENANCY_REDIS_ADMIN_PASSWORD"
apply_secret vault-main-admin --from-literal=roleId="$TENANCY_BAO_ROLE_ID" --from-literal=secretId="$TENANCY_BAO_SECRET_ID"
BAO_ADDR=$VAULT_ADDR BAO_TOKEN=$VAULT_TOKEN bao write auth/kubernetes/config kubernetes_host="$KUBE_APISERVER" \
  kubernetes_ca_cert="$ca" token_reviewer_jwt="$reviewer" disable_local_ca_jwt=true >/dev/null
# OpenSearch (security plugin, TLS): its admin user and the platform CA that signed its certificate.
apply_secret search-main-admin --from-literal=username="$SEARCH_ADMIN_USERNAME" \
  --from-literal=password="$SEARCH_ADMIN_PASSWORD" --from-file=ca.crt="$SEARCH_CA_FILE"
# FerretDB's PostgreSQL (the operator grants there): with the node, on the bridge address, which the
# chart's operator pods reach and the host does too.
apply_secret mongo-main-admin --from-literal=username="${FERRETDB_ADMIN_USER:-ferretdb_admin}" \
  --from-literal=password="${FERRETDB_ADMIN_PASSWORD:-$(cat "$TENANCY_PLATFORM_DIR/secrets/ferretdb-admin-password")}" \
  --from-literal=postgresHost="$([[ ${TENANCY_NODE:-0} == 1 ]] && echo "$TENANCY_NODE_BRIDGE_IP" || echo 127.0.0.1)" --from-literal=postgresPort="$PGPORT" \
  --from-literal=postgresDatabase=ferretdb
echo "backend admin Secrets ready in $ns"
