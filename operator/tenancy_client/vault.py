"""The tenant's OpenBao login and transit signing, over plain HTTP (urllib3), without hvac.

Login: `POST <VAULT_ADDR>/v1/<VAULT_AUTH_PATH>/login` with `VAULT_ROLE` and a ServiceAccount token of
`tenant-app` (read from the projected token file at each login, or given). The client token is kept
until 90% of its lease has passed; a 403 logs in again once (the operator revokes tokens issued before
a credentials rotation), and a second 403 is the server's answer: `Refused`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3

__all__ = ["Refused", "TransitSigner", "DEFAULT_TOKEN_FILE"]

DEFAULT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
SIGN_BATCH = 100


class Refused(Exception):
    """A server refused the request (OpenBao 403, Redis NOPERM): the message is the server's."""

    def __init__(self, server: str, status: int | str, message: str) -> None:
        super().__init__(f"{server} refused ({status}): {message}")
        self.server, self.status, self.message = server, status, message


class TransitSigner:
    """Signs with `<mount>/sign/<key>` as the tenant's own login; thread-safe."""

    def __init__(self, addr: str, role: str, auth_path: str, mount: str, key: str,
                 service_account_token: str | Callable[[], str] | None = None, pool_size: int = 16) -> None:
        self.addr, self.role, self.auth_path = addr.rstrip("/"), role, auth_path.strip("/")
        self.mount, self.key = mount.strip("/"), key
        self._jwt = service_account_token
        self._http = urllib3.PoolManager(maxsize=pool_size, retries=False, timeout=urllib3.Timeout(connect=3, read=10))
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def _service_account_token(self) -> str:
        if callable(self._jwt):
            return self._jwt()
        if isinstance(self._jwt, str):
            return self._jwt
        with open(DEFAULT_TOKEN_FILE) as f:
            return f.read().strip()

    def _post(self, path: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Vault-Token"] = token
        response = self._http.request("POST", f"{self.addr}/v1/{path}", body=json.dumps(body).encode(), headers=headers)
        try:
            data = json.loads(response.data or b"{}")
        except ValueError:
            data = {"errors": [response.data[:200].decode("utf-8", "replace")]}
        return response.status, data

    def token(self, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or time.monotonic() >= self._renew_at:
                status, data = self._post(f"{self.auth_path}/login", {"role": self.role, "jwt": self._service_account_token()},
                                          None)
                if status != 200:
                    raise Refused("openbao", status, "; ".join(data.get("errors") or []) or "login failed")
                auth = data["auth"]
                self._token = auth["client_token"]
                self._renew_at = time.monotonic() + 0.9 * float(auth.get("lease_duration") or 300)
            return self._token

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, data = self._post(path, body, self.token())
        if status == 403:  # a token revoked since (rotation): log in again once
            status, data = self._post(path, body, self.token(fresh=True))
        if status != 200:
            raise Refused("openbao", status, "; ".join(data.get("errors") or []) or f"HTTP {status}")
        return data["data"]

    def sign(self, message: bytes, version: int) -> bytes:
        """The raw signature (Ed25519 64 bytes, ECDSA r||s) of `message` with key version `version`."""
        data = self._call(f"{self.mount}/sign/{self.key}", self._body(message, version))
        return _raw(data["signature"])

    def sign_many(self, messages: list[bytes], version: int) -> list[bytes]:
        """Many signatures, `SIGN_BATCH` per request (`batch_input`; OpenBao refuses larger JSON bodies
        as too complex)."""
        out: list[bytes] = []
        for start in range(0, len(messages), SIGN_BATCH):
            body = {"batch_input": [{"input": base64.b64encode(m).decode()} for m in messages[start:start + SIGN_BATCH]],
                    "key_version": version, "marshaling_algorithm": "jws"}
            results = self._call(f"{self.mount}/sign/{self.key}", body)["batch_results"]
            errors = [r["error"] for r in results if r.get("error")]
            if errors:
                raise Refused("openbao", 400, errors[0])
            out += [_raw(r["signature"]) for r in results]
        return out

    @staticmethod
    def _body(message: bytes, version: int) -> dict[str, Any]:
        # marshaling_algorithm=jws: ECDSA signatures come as base64url r||s, what JWS (RFC 7518 3.4) wants.
        return {"input": base64.b64encode(message).decode(), "key_version": version, "marshaling_algorithm": "jws"}


def _raw(signature: str) -> bytes:
    """`vault:v<N>:<signature>` -> bytes; base64url (jws marshaling) or standard base64 (ed25519)."""
    text = signature.split(":", 2)[2]
    text += "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_"))
