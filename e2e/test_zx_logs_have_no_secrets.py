"""No secret in any log line of the e2e run (issue #18 item 4).

Named to run near the end of `make test`, so it reads the log lines of (almost) the whole run: the e2e
operators' logs (`operator-e2e*.log`, JSON lines with the chart's `logFormat`) and those of the platform
parts the operator drives (PostgreSQL, Redis, OpenBao, FerretDB, OpenSearch, the API server and its
audit log, the controller manager), each from where it ended when the run started (`run_record`). The
secrets are every value a Secret held during the run (tenant credentials of every version, backend
admin credentials, tokens), the SCRAM verifiers of the tenants' PostgreSQL roles, the password hashes
of their Redis ACL users, and the operator's ServiceAccount token; each is searched raw and
base64-encoded. OpenBao tokens, held by no Secret, are looked for by their shape. The checker can fail: a deliberately bad line with a planted secret is found.
"""

from __future__ import annotations

import json
import logging
import re
import time

from tenancy_operator.observability.logs import JsonFormatter

from . import kube
from .admin import pg_admin, redis_admin
from .kube import get, kubectl, tenant_yaml
from .secrets_watch import find_secrets, find_token_shapes

NAME = "obs-no-secrets"


def backend_verifiers() -> dict[str, str]:
    """What the backends keep of the tenants' passwords: verifiers and hashes are secrets too."""
    out = {}
    for row in pg_admin("SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE 't\\_%' AND rolpassword IS NOT NULL"):
        out[row["rolpassword"]] = f"postgres verifier of {row['rolname']}"
    for line in redis_admin().execute_command("ACL", "LIST"):
        if line.startswith("user tenant:"):
            for digest in re.findall(r"#([0-9a-f]{64})", line):
                out[digest] = f"redis password hash of {line.split()[1]}"
    return out


def operator_token(operator_kubeconfig: str) -> dict[str, str]:
    users = json.loads(open(operator_kubeconfig).read())["users"]
    return {u["user"]["token"]: "the operator's ServiceAccount token" for u in users if u["user"].get("token")}


def _rotated(name: str, before: int) -> bool:
    creds = ((get("tenant", name) or {}).get("status") or {}).get("credentials") or {}
    return int(creds.get("version") or 0) > before


def test_no_secret_in_any_log_line_of_the_run(operator, operator_kubeconfig, backends, run_record, cleanup_tenants):
    cleanup_tenants.append(NAME)
    kube.apply(tenant_yaml(NAME, postgres={"enabled": True}, redis={"enabled": True}, vault={"kv": True, "transitKey": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{NAME}", "--timeout=120s")
    version = int(get("tenant", NAME)["status"]["credentials"]["version"])
    kubectl("annotate", "--overwrite", "tenant", NAME, f"tenancy.dev/rotate=logs-{time.time()}")
    kube.eventually(lambda: _rotated(NAME, version), 90, message="a rotation, so two credential versions were made")
    kubectl("wait", "--for=condition=Ready", f"tenant/{NAME}", "--timeout=120s")
    time.sleep(1)  # the operator's last lines of this pass reach its log file
    secrets = {**run_record.secrets, **backend_verifiers(), **operator_token(operator_kubeconfig)}
    tenant_secrets = [s for s in secrets.values() if s.startswith(f"tenant-{NAME}/")]
    assert len(tenant_secrets) >= 4, f"the watch saw the tenant's credentials of both versions: {tenant_secrets}"
    logs = run_record.run_logs()
    assert logs.get("operator-e2e.log"), "the run's operator log is empty"
    findings = find_secrets(logs, secrets) + find_token_shapes(logs)
    print(f"searched {len(logs)} logs, {sum(map(len, logs.values()))} bytes written during the run, "
          f"for {len(secrets)} secret values")
    assert not findings, "secrets in log lines:\n" + "\n".join(
        f"{f.source} ({f.form}) in {f.log}: ...{f.excerpt}" for f in findings)
    lines = logs["operator-e2e.log"].decode(errors="replace").splitlines()
    json_lines = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(e.get("tenant") == NAME and e.get("reconcile_id") for e in json_lines), \
        "the operator logs JSON lines naming the tenant and the reconcile id (chart value logFormat: json)"


def test_a_planted_secret_in_a_bad_log_line_is_found(run_record):
    """The checker can fail: one line logged the way a careless handler would is caught, raw and base64."""
    secret = next((v for v, where in run_record.secrets.items() if where.endswith("PASSWORD")), "pl4nted-Secret-Value-0042")
    record = logging.LogRecord("tenancy_operator.handlers.careless", logging.INFO, __file__, 1,
                               "connecting with %s", (secret,), None)
    bad_line = JsonFormatter().format(record).encode() + b"\n"
    logs = {**run_record.run_logs(), "planted.log": b'{"message": "fine"}\n' + bad_line}
    findings = find_secrets(logs, {secret: "planted"})
    assert [(f.log, f.form) for f in findings] == [("planted.log", "raw")]
    import base64

    encoded = {"planted-b64.log": b"payload=" + base64.b64encode(b"x" + secret.encode() + b"y")}
    assert [f.form for f in find_secrets(encoded, {secret: "planted"})] == ["base64"]
    # A token the operator got by logging in is in no Secret: found by its shape, not a Java class name.
    token_line = b'{"message": "login ok, token s.Q3xR7mZp9LkT2vBn8WcYd5Hf"}\n'
    assert [f.log for f in find_token_shapes({"token.log": token_line, "java.log": b"at s.OpenSearchSecurityPlugin\n"})] \
        == ["token.log"]
