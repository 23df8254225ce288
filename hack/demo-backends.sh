#!/usr/bin/env bash
# Creates the Backends' admin Secrets in tenancy-system from the local platform's credentials, and a
# token reviewer ServiceAccount for OpenBao's Kubernetes auth. Idempotent. Needs `source .platform/env`.
set -euo pipefail
ns=tenancy-system
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$ns" tenancy.dev/platform=true --overwrite >/dev/null
redis_pass=$(python3 -c 'import os,urllib.parse as u; print(u.urlparse(os.environ["REDIS_URL"]).password)')
kubectl -n "$ns" create serviceaccount openbao-auth --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create clusterrolebinding openbao-auth-delegator --clusterrole=system:auth-delegator \
  --serviceaccount="$ns:openbao-auth" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
reviewer=$(kubectl -n "$ns" create token openbao-auth --duration=720h)
ca=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d)
apply_secret() { kubectl -n "$ns" create secret generic "$1" "${@:2}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
apply_secret pg-main-admin --from-literal=username="$PGUSER" --from-literal=password="$PGPASSWORD"
apply_secret redis-main-admin --from-literal=username=default --from-literal=password="$redis_pass"
apply_secret vault-main-admin --from-literal=token="$VAULT_TOKEN" --from-literal=kubernetes_host="$KUBE_APISERVER" \
  --from-literal=kubernetes_ca_cert="$ca" --from-literal=token_reviewer_jwt="$reviewer"
# OpenSearch (security plugin, TLS): its admin user and the platform CA that signed its certificate.
apply_secret search-main-admin --from-literal=username="$SEARCH_ADMIN_USERNAME" \
  --from-literal=password="$SEARCH_ADMIN_PASSWORD" --from-file=ca.crt="$SEARCH_CA_FILE"
apply_secret mongo-main-admin --from-literal=username="${FERRETDB_ADMIN_USER:-ferretdb_admin}" \
  --from-literal=password="${FERRETDB_ADMIN_PASSWORD:-$(cat "$TENANCY_PLATFORM_DIR/secrets/ferretdb-admin-password")}" \
  --from-literal=postgresHost=127.0.0.1 --from-literal=postgresPort="$PGPORT" --from-literal=postgresDatabase=ferretdb
echo "backend admin Secrets ready in $ns"
