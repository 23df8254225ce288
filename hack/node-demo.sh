#!/usr/bin/env bash
# The operator as the chart's Deployment on the platform's real node (issue 17 item 4): the operator's
# image (make image) imported into the node's containerd, `helm upgrade --install` of the chart with
# imagePullPolicy Never, both replicas Ready (kopf peering between them), Backends on the bridge address
# (pods reach every backend there; the host too), then a Tenant applied and Ready.
# Needs the platform up with its node (TENANCY_NODE=1 make up) and `source .platform/env`; run as root.
# Usage: node-demo.sh [import | backends | install | tenant NAME | workload TENANT | examples | park | uninstall]
#        (no argument: all but examples and uninstall; examples: what make demo runs)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/platform/lib.sh"
[[ ${TENANCY_NODE:-0} == 1 ]] || die "the platform runs without its node: make down, then TENANCY_NODE=1 make up"
NS=tenancy-system
RELEASE=tenancy-operator
ARCHIVE=$REPO/build/images/tenancy-operator.oci.tar
VALUES=$REPO/.platform/node-values.yaml
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
t() { awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $1}"; }

# The image: built (or taken from the cache) by image.sh, imported into the node's containerd.
import_image() {
  local t0=$EPOCHREALTIME
  (cd "$REPO" && bash platform/image.sh operator) >/dev/null
  REF=$(<"$REPO/build/images/tenancy-operator.ref")
  local digest
  digest=$(<"$REPO/build/images/tenancy-operator.digest")
  if [[ $(ctr_ images ls "name==$REF" -q 2>/dev/null) != "$REF" ]] ||
     ! ctr_ images ls "name==$REF" | grep -q "${digest#*:}"; then
    ctr_ images import "$ARCHIVE" >/dev/null
  fi
  # containerd 1.6 records no repo digest for an imported image, so the kubelet would not find
  # repo@sha256:... (ErrImageNeverPull): the digest reference is added as a second name.
  ctr_ images tag --force "$REF" "${REF%:*}@$digest" >/dev/null
  echo "image $REF (${digest}) in the node's containerd in $(t "$t0")s"
  write_values
}

# Backends for the in-cluster operator: examples/backends.yaml with the bridge address and this
# platform's ports (PostgreSQL, Redis and OpenBao listen there; OpenSearch, FerretDB and Prometheus through
# node-apiserver.sh's relays). The host reaches the bridge address too.
backends() {
  kubectl apply --server-side -f "$REPO/crds/" >/dev/null
  kubectl wait --for=condition=Established crd -l app.kubernetes.io/part-of=tenancy-operator --timeout=60s >/dev/null
  bash "$REPO/hack/demo-backends.sh" >/dev/null
  sed -e "s/host: 127\.0\.0\.1/host: $TENANCY_NODE_BRIDGE_IP/" -e "s/port: 15432}/port: $PG_PORT}/" \
      -e "s/port: 16379}/port: $REDIS_PORT}/" -e "s/port: 18200}/port: $BAO_PORT}/" \
      -e "s/port: 19200,/port: $OPENSEARCH_PORT,/" -e "s/port: 17017}/port: $FERRETDB_PORT}/" \
      "$REPO/examples/backends.yaml" | kubectl apply -f - >/dev/null
  echo "backends of examples/backends.yaml on $TENANCY_NODE_BRIDGE_IP"
}

# The chart's values for this platform, in $VALUES: the imported image pinned by the archive's manifest
# digest (a rebuilt image, same tag and new digest, rolls the Deployment; containerd's CRI finds an
# imported image by name@digest too) and never pulled, two replicas, no archive volume (no storage class
# here), the NetworkPolicy's egress to this platform's (offset) ports, the API server's relay included,
# and Prometheus on the bridge. The README's `helm upgrade --install ... -f .platform/node-values.yaml`.
write_values() {
  local digest
  digest=$(<"$REPO/build/images/tenancy-operator.digest")
  cat > "$VALUES" <<YAML
# Written by hack/node-demo.sh import: the chart's values for the local platform with its node.
replicaCount: 2
image: {repository: "${REF%:*}", digest: "$digest", pullPolicy: Never}
archive: {enabled: false}
networkPolicy: {egressTCPPorts: [443, $APISERVER_PORT, $PG_PORT, $REDIS_PORT, $BAO_PORT, $OPENSEARCH_PORT, $FERRETDB_PORT]}
autoscaling: {prometheusUrl: "http://$TENANCY_NODE_BRIDGE_IP:$PROM_PORT"}
YAML
  echo "chart values for this platform in ${VALUES#"$REPO"/}"
}

# helm upgrade --install, exactly as the README shows it (tests/unit/platform/test_readme_node_install.py
# holds the two to the same text, so the names are spelled out); both pods Ready (startup probe on kopf's /healthz).
install() {
  local t0=$EPOCHREALTIME
  [[ -f $VALUES ]] || die "no $VALUES: run node-demo.sh import first"
  # The operator's namespace, labelled as a platform namespace and held to the restricted Pod Security
  # Standard (the chart's pods pass it).
  kubectl apply -f "$REPO/manifests/namespace.yaml" >/dev/null
  (cd "$REPO" && helm upgrade --install tenancy-operator charts/tenancy-operator -n tenancy-system -f .platform/node-values.yaml \
    --wait=false --timeout=120s >/dev/null)
  # The rollout's end is both new pods available (Ready). Not `kubectl wait pod -l ...`: it also picks a
  # pod of an older ReplicaSet still terminating, and waits on it until its timeout.
  kubectl -n "$NS" rollout status "deployment/$RELEASE" --timeout=300s >/dev/null
  echo "helm install: both operator pods Ready in $(t "$t0")s"
  kubectl -n "$NS" get pods -o wide -l "app.kubernetes.io/instance=$RELEASE"
}

tenant() {
  local name=${1:-node-demo} t0=$EPOCHREALTIME
  kubectl apply -f - >/dev/null <<YAML
apiVersion: tenancy.dev/v1alpha1
kind: Tenant
metadata: {name: $name}
spec:
  displayName: Node demo
  postgres: {enabled: true}
  redis: {enabled: true}
  vault: {enabled: true, kv: true}
YAML
  kubectl wait --for=condition=Ready "tenant/$name" --timeout=180s >/dev/null
  echo "tenant $name Ready in $(t "$t0")s"
}

# The tenant workload (make image: images/workload/) in the tenant's namespace: envFrom tenant-credentials,
# the tenant's ServiceAccount tenant-app (its OpenBao Kubernetes-auth role is bound to it), restricted
# securityContext, readiness on /healthz (200 only when PostgreSQL, Redis and OpenBao all answer).
workload() {
  local name=${1:-node-demo} t0=$EPOCHREALTIME ref ns
  (cd "$REPO" && bash platform/image.sh workload) >/dev/null
  ref=$(<"$REPO/build/images/tenant-workload.ref")
  ctr_ images ls -q | grep -qx "$ref" || ctr_ images import "$REPO/build/images/tenant-workload.oci.tar" >/dev/null
  ns=$(kubectl get tenant "$name" -o jsonpath='{.status.namespace}')
  [[ -n $ns ]] || die "tenant $name has no namespace yet"
  kubectl -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: workload}
spec:
  replicas: 1
  selector: {matchLabels: {app: workload}}
  template:
    metadata: {labels: {app: workload}}
    spec:
      serviceAccountName: tenant-app
      securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: workload
        image: $ref
        imagePullPolicy: Never
        envFrom: [{secretRef: {name: tenant-credentials}}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2, timeoutSeconds: 10, failureThreshold: 3}
        livenessProbe: {httpGet: {path: /livez, port: http}, periodSeconds: 10}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
        resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 500m, memory: 256Mi}}
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {sizeLimit: 16Mi}}]
YAML
  kubectl -n "$ns" rollout status deployment/workload --timeout=180s >/dev/null
  local pod
  pod=$(kubectl -n "$ns" get pod -l app=workload --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
  echo "workload $ns/$pod Ready in $(t "$t0")s; /healthz: $(kubectl -n "$ns" exec "$pod" -- python3 -c \
    'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8080/healthz", timeout=15).read().decode())')"
}

# make demo: the chart's operator on the node, then the examples (policies and tenants; their Backends
# are applied by backends() with the bridge address), every one Ready, shown.
examples() {
  local t0=$EPOCHREALTIME
  kubectl apply -f "$REPO/examples/policies.yaml" $(printf -- '-f %s ' "$REPO"/examples/tenant-*.yaml) >/dev/null
  kubectl wait --for=condition=Ready backends --all --timeout=120s >/dev/null
  kubectl wait --for=condition=Ready tenants --all --timeout=300s >/dev/null
  echo "example tenants Ready in $(t "$t0")s"
  echo; kubectl get tenancy; echo; kubectl-tenant list; echo; kubectl-tenant status globex
}

# Back to host-process mode: the Deployment scaled to 0 (each pod withdraws its peering record on
# SIGTERM) and the operator's image names removed from containerd, so the release that e2e's conftest.py
# installs (same name, default pullPolicy) cannot run pods that would peer with the host-process operator.
park() {
  kubectl -n "$NS" scale "deployment/$RELEASE" --replicas=0 >/dev/null 2>&1 || true
  kubectl -n "$NS" wait --for=delete pod -l "app.kubernetes.io/name=tenancy-operator,app.kubernetes.io/instance=$RELEASE" \
    --timeout=60s >/dev/null 2>&1 || true
  local ref digest
  ref=$(<"$REPO/build/images/tenancy-operator.ref")
  digest=$(<"$REPO/build/images/tenancy-operator.digest")
  ctr_ images rm "$ref" "${ref%:*}@$digest" >/dev/null 2>&1 || true
  echo "operator pods stopped, image $ref removed from the node's containerd"
}

case ${1:-all} in
  all) import_image; backends; install; tenant node-demo; workload node-demo; echo; kubectl get tenancy ;;
  examples) import_image; backends; install; examples ;;
  import) import_image ;;
  backends) backends ;;
  install) REF=$(<"$REPO/build/images/tenancy-operator.ref"); install ;;
  tenant) tenant "${2:-node-demo}" ;;
  workload) workload "${2:-node-demo}" ;;
  park) park ;;
  uninstall) helm uninstall "$RELEASE" --namespace "$NS" >/dev/null 2>&1 || true ;;
  *) die "usage: node-demo.sh [all|import|backends|install|tenant NAME|workload TENANT|examples|park|uninstall]" ;;
esac
