"""A tenant's application, as small as it can be: it reads the `tenant-credentials` Secret's values
from its environment (the pod's `envFrom: secretRef`) and serves

    GET /healthz   200 when every backend present in the environment answers, 503 otherwise, with a
                   JSON body per backend: {"ok": bool, "ms": int, "error": str (when not ok)}
    GET /livez     200 always (the process is up)

Backends, each checked only when its keys are present:
- PostgreSQL (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD): connect, `SELECT 1`.
- Redis (REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_KEY_PREFIX): AUTH as the
  tenant's ACL user, SET then GET a key under its own prefix.
- OpenBao (VAULT_ADDR, VAULT_AUTH_PATH, VAULT_ROLE): a Kubernetes-auth login with the pod's
  ServiceAccount token (VAULT_JWT_FILE, default the projected token's path), `lookup-self`, and with
  VAULT_KV_MOUNT/VAULT_KV_PATH a LIST of the tenant's KV folder (404, an empty folder, is a pass). The
  token is kept and reused until OpenBao refuses it (revoked at a rotation), then the login is redone.

No secret is ever printed or served: every error text goes through `redact` with the environment's
secret values. Needs python3, psycopg and redis; OpenBao is plain HTTP (urllib).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIMEOUT = float(os.environ.get("WORKLOAD_CHECK_TIMEOUT", "3"))
DEFAULT_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
SECRET_MARKERS = ("PASSWORD", "TOKEN", "SECRET", "_URL", "_URI", "JWT")
"""Keys whose values are secret (passwords, DATABASE_URL, REDIS_URL, MONGODB_URI ...)."""


# ---- pure parts -------------------------------------------------------------------------------------

def present_backends(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The backends whose keys are all in `env`, each with the keys its check uses."""
    found: dict[str, dict[str, str]] = {}
    pg = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD")
    if all(env.get(k) for k in pg):
        found["postgres"] = {k: env[k] for k in pg}
    redis_keys = ("REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_KEY_PREFIX")
    if all(env.get(k) for k in redis_keys):
        found["redis"] = {k: env[k] for k in redis_keys}
    vault = ("VAULT_ADDR", "VAULT_AUTH_PATH", "VAULT_ROLE")
    if all(env.get(k) for k in vault):
        found["openbao"] = {k: env[k] for k in vault}
        for k in ("VAULT_KV_MOUNT", "VAULT_KV_PATH"):
            if env.get(k):
                found["openbao"][k] = env[k]
        found["openbao"]["VAULT_JWT_FILE"] = env.get("VAULT_JWT_FILE") or DEFAULT_JWT_FILE
    return found


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values that must never appear in output: those of secret-looking keys, longest first."""
    values = {v for k, v in env.items() if v and len(v) >= 4 and any(m in k.upper() for m in SECRET_MARKERS)}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


def verdict(results: Mapping[str, Mapping[str, object]]) -> int:
    """200 only when there is at least one backend and every one passed."""
    return 200 if results and all(r.get("ok") is True for r in results.values()) else 503


def redis_key(prefix: str, host: str) -> str:
    """The health key: under the tenant's prefix (its ACL allows only that), one per pod."""
    return f"{prefix}workload:health:{host}"


def kv_list_path(mount: str, path: str) -> str:
    """KV v2 LIST of the tenant's folder: `<mount>/metadata/<path>` (path `tenant-a/` or `tenant-a`)."""
    return f"{mount.strip('/')}/metadata/{path.strip('/')}/"


# ---- the checks (real clients) ---------------------------------------------------------------------

def check_postgres(cfg: Mapping[str, str]) -> None:
    import psycopg

    with psycopg.connect(host=cfg["PGHOST"], port=int(cfg["PGPORT"]), dbname=cfg["PGDATABASE"], user=cfg["PGUSER"],
                         password=cfg["PGPASSWORD"], connect_timeout=max(1, int(TIMEOUT)),
                         application_name="tenant-workload") as conn:
        row = conn.execute("SELECT 1").fetchone()
        if row != (1,):
            raise RuntimeError(f"SELECT 1 returned {row!r}")


def check_redis(cfg: Mapping[str, str]) -> None:
    import redis

    client = redis.Redis(host=cfg["REDIS_HOST"], port=int(cfg["REDIS_PORT"]), username=cfg["REDIS_USERNAME"],
                         password=cfg["REDIS_PASSWORD"], socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                         decode_responses=True)
    try:
        key, value = redis_key(cfg["REDIS_KEY_PREFIX"], socket.gethostname()), str(time.time_ns())
        # SET and GET in one MULTI/EXEC: two checks at once in this pod (the readiness probe and a test's
        # request) share the key, and apart one's GET could read the other's SET.
        _, got = client.pipeline(transaction=True).set(key, value, ex=300).get(key).execute()
        if got != value:
            raise RuntimeError(f"GET {key} returned another value than the SET")
    finally:
        client.close()


class OpenBao:
    """A Kubernetes-auth login kept between checks; redone when OpenBao refuses the token."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._lock = threading.Lock()
        self._context = ssl.create_default_context(cafile=os.environ.get("VAULT_CACERT") or None)

    def _call(self, method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if token:
            req.add_header("X-Vault-Token", token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT, context=self._context) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else {}
            except ValueError:
                return e.code, {}

    def _login(self, cfg: Mapping[str, str]) -> str:
        with open(cfg["VAULT_JWT_FILE"]) as f:
            jwt = f.read().strip()
        url = f"{cfg['VAULT_ADDR'].rstrip('/')}/v1/{cfg['VAULT_AUTH_PATH'].strip('/')}/login"
        status, body = self._call("POST", url, {"role": cfg["VAULT_ROLE"], "jwt": jwt})
        if status != 200:
            raise RuntimeError(f"login to {cfg['VAULT_AUTH_PATH']} as role {cfg['VAULT_ROLE']}: HTTP {status} "
                               f"{'; '.join(body.get('errors') or [])}")
        return body["auth"]["client_token"]

    def check(self, cfg: Mapping[str, str]) -> None:
        addr = cfg["VAULT_ADDR"].rstrip("/")
        with self._lock:
            for attempt in (1, 2):
                if self._token is None:
                    self._token = self._login(cfg)
                status, body = self._call("GET", f"{addr}/v1/auth/token/lookup-self", token=self._token)
                if status == 403 and attempt == 1:
                    self._token = None  # revoked (a rotation) or expired: log in again
                    continue
                if status != 200:
                    raise RuntimeError(f"token lookup-self: HTTP {status} {'; '.join(body.get('errors') or [])}")
                break
            if cfg.get("VAULT_KV_MOUNT") and cfg.get("VAULT_KV_PATH"):
                path = kv_list_path(cfg["VAULT_KV_MOUNT"], cfg["VAULT_KV_PATH"])
                status, body = self._call("LIST", f"{addr}/v1/{path}", token=self._token)
                if status not in (200, 404):
                    raise RuntimeError(f"LIST {path}: HTTP {status} {'; '.join(body.get('errors') or [])}")


# ---- the server ------------------------------------------------------------------------------------

Check = Callable[[Mapping[str, str]], None]


def run_checks(backends: Mapping[str, Mapping[str, str]], checks: Mapping[str, Check],
               secrets: list[str]) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for name, cfg in backends.items():
        start = time.monotonic()
        try:
            checks[name](cfg)
            results[name] = {"ok": True}
        except Exception as e:  # any failure of a backend is that backend's verdict, never a crash
            results[name] = {"ok": False, "error": redact(f"{type(e).__name__}: {e}", secrets)[:500]}
        results[name]["ms"] = int((time.monotonic() - start) * 1000)
    return results


def make_handler(env: Mapping[str, str]) -> type[BaseHTTPRequestHandler]:
    backends = present_backends(env)
    secrets = secret_values(env)
    openbao = OpenBao()
    checks: dict[str, Check] = {"postgres": check_postgres, "redis": check_redis, "openbao": openbao.check}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/livez":
                self._reply(200, {"status": "alive"})
            elif path == "/healthz":
                results = run_checks(backends, checks, secrets)
                code = verdict(results)
                body: dict[str, object] = {"status": "ok" if code == 200 else "fail", "backends": results}
                if not backends:
                    body["error"] = "no backend's keys in the environment (envFrom the tenant-credentials Secret)"
                self._reply(code, body)
                summary = " ".join(f"{n}={'ok' if r['ok'] else 'FAIL'}" for n, r in results.items()) or "none"
                print(f"healthz {code} {summary}", flush=True)
            else:
                self._reply(404, {"error": "not found"})

        def _reply(self, code: int, body: Mapping[str, object]) -> None:
            data = (json.dumps(body, sort_keys=True) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # the access log: paths only
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    env = dict(os.environ)
    port = int(env.get("WORKLOAD_PORT", "8080"))
    host = env.get("WORKLOAD_BIND", "0.0.0.0")
    server = ThreadingHTTPServer((host, port), make_handler(env))
    names = ", ".join(present_backends(env)) or "none"
    print(f"tenant-workload on {host}:{port}, backends: {names}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
