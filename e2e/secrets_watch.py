"""What an e2e run must never log: every secret value it created, and the log lines it wrote.

`RunRecord` starts with the session (e2e/conftest.py): it notes where each log file under
`.platform/logs` ends (so only lines written by this run are read later) and watches every Secret in
the cluster for the whole run, keeping each secret value it ever sees, also of tenants deleted
midway. `find_secrets` is the checker: it searches log text for each value, raw and base64-encoded
(in the three alignments base64 can take inside a longer text).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

SECRET_KEY = re.compile(r"(?i)password|passwd|token|secret|jwt|private|credential")
"""Secret data keys whose values are secret (not PGHOST, REDIS_KEY_PREFIX, VAULT_ROLE, usernames, CA certificates)."""
URL_KEY = re.compile(r"(?i)(_URL|_URI)$")
MIN_LENGTH = 8
"""Shorter values (ports, flags) say nothing when found."""


@dataclass(frozen=True)
class Finding:
    source: str
    """Where the secret came from (namespace/secret/key, or the backend object)."""
    form: str
    """raw, or base64."""
    log: str
    excerpt: str


def secret_values(secret: dict) -> dict[str, str]:
    """{value: where} for one Secret object (`data` base64-encoded, as the API serves it)."""
    meta = secret.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    out: dict[str, str] = {}
    for key, encoded in (secret.get("data") or {}).items():
        try:
            value = base64.b64decode(encoded or "").decode()
        except (ValueError, UnicodeDecodeError):
            continue
        if SECRET_KEY.search(key) and len(value) >= MIN_LENGTH:
            out[value] = f"{where}/{key}"
        elif URL_KEY.search(key):
            password = urlparse(value).password
            if password and len(password) >= MIN_LENGTH:
                out[password] = f"{where}/{key} (password)"
    return out


def _needles(value: str) -> list[tuple[str, bytes]]:
    """The value raw, and the part of its base64 encoding that is the same wherever it sits in a longer
    encoded text: for each of the three byte alignments, the 4-character groups made of its bytes alone."""
    raw = value.encode()
    forms = [("raw", raw)]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        core = encoded[4 if shift else 0: 4 * ((shift + len(raw)) // 3)]
        if len(core) >= MIN_LENGTH:
            forms.append(("base64", core))
    return forms


def find_secrets(logs: dict[str, bytes], secrets: dict[str, str]) -> list[Finding]:
    """Every place a secret value appears in the given log texts ({name: bytes}).

    GNU grep's fixed-string search looks for all of them at once (a whole `make test` run leaves tens of
    megabytes of logs and thousands of values; one `bytes.find` per value and log took minutes)."""
    needles: dict[bytes, tuple[str, str]] = {}
    for value, source in secrets.items():
        for form, needle in _needles(value):
            if b"\n" not in needle:
                needles.setdefault(needle, (source, form))
    found: list[Finding] = []
    if not needles:
        return found
    with tempfile.NamedTemporaryFile("wb", suffix=".needles") as patterns:
        patterns.write(b"\n".join(needles) + b"\n")
        patterns.flush()
        for name, text in logs.items():
            if not text:
                continue
            run = subprocess.run(["grep", "-a", "-F", "-o", "-b", "-f", patterns.name], input=text, capture_output=True,
                                 env={**os.environ, "LC_ALL": "C"}, timeout=600)
            assert run.returncode in (0, 1), f"grep failed on {name}: {run.stderr.decode(errors='replace')}"
            for line in run.stdout.splitlines():
                offset, _, match = line.partition(b":")
                source, form = needles.get(match, ("?", "?"))
                at = int(offset)
                excerpt = text[max(0, at - 80): at].decode(errors="replace") + "<SECRET>"
                found.append(Finding(source, form, name, excerpt))
    return found


OPENBAO_TOKEN = re.compile(rb"(?<![A-Za-z0-9.])[sbr]\.[A-Za-z0-9]{24,}(?![A-Za-z0-9])")
"""OpenBao's token shape (prefix `s.` service, `b.` batch, `r.` recovery, then a random base62 body:
openbao.org/docs/concepts/tokens). Tokens the operator and the tests get by logging in are in no
Secret, so they are looked for by shape; a body without a digit is taken for a word (a Java class
`s.OpenSearchSecurityPlugin`), which misses about 1 token in 70."""


def find_token_shapes(logs: dict[str, bytes]) -> list[Finding]:
    """Every OpenBao-token-shaped string in the given log texts."""
    found = []
    for name, text in logs.items():
        for match in OPENBAO_TOKEN.finditer(text or b""):
            if re.search(rb"[0-9]", match.group()):
                at = match.start()
                found.append(Finding("an OpenBao token (by shape)", "raw", name,
                                     text[max(0, at - 80): at].decode(errors="replace") + "<TOKEN>"))
    return found


class RunRecord:
    """Log offsets at the start of the run, and every secret value the run's Secrets ever held."""

    def __init__(self, logs_dir: Path):
        self.logs_dir = logs_dir
        self.offsets = {p.name: p.stat().st_size for p in logs_dir.glob("*.log")} if logs_dir.exists() else {}
        self.secrets: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="secret-watch", daemon=True)
        self.started = time.time()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        from kubernetes import client, config, watch

        # Its own client: the process-wide default configuration stays as it was.
        api = client.CoreV1Api(config.new_client_from_config(config_file=os.environ["KUBECONFIG"]))
        while not self._stop.is_set():
            try:
                listed = api.list_secret_for_all_namespaces()
                for item in listed.items:
                    self._keep(api.api_client.sanitize_for_serialization(item))
                stream = watch.Watch().stream(api.list_secret_for_all_namespaces, timeout_seconds=30,
                                              resource_version=listed.metadata.resource_version)
                for event in stream:
                    self._keep(api.api_client.sanitize_for_serialization(event["object"]))
                    if self._stop.is_set():
                        return
            except Exception:  # noqa: BLE001 - a dropped watch is listed and watched again
                time.sleep(1)

    def _keep(self, secret: dict) -> None:
        if secret.get("type") in ("Opaque", "kubernetes.io/service-account-token", None):
            self.secrets.update(secret_values(secret))

    def run_logs(self) -> dict[str, bytes]:
        """Every log line written under .platform/logs since the run started."""
        out = {}
        for path in sorted(self.logs_dir.glob("*.log")):
            with path.open("rb") as f:
                f.seek(self.offsets.get(path.name, 0))
                out[path.name] = f.read()
        return out
