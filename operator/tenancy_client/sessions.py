"""Sessions of a tenant's users: create, validate, touch, revoke, list; tokens are compact JWS.

Needs the tenant's `tenant-credentials` (REDIS_URL, REDIS_KEY_PREFIX, VAULT_ADDR, VAULT_ROLE,
VAULT_AUTH_PATH) and ConfigMap `tenant-session-keys` (`jwks.json`, `policy.json`), as `config.load()`
reads them, plus a ServiceAccount token of `tenant-app` for the OpenBao login.

- A token is a JWS (RFC 7515 compact) made by PyJWT, whose signature OpenBao transit computes with the
  tenant's session key (the private key never leaves OpenBao). Header `kid` `v<version>`: the newest
  version in this client's JWK Set. Claims: `iss` (tenant), `sub` (user), `sid`, `iat`, `exp`.
- Validation is offline (PyJWT against the JWK Set: signature, `exp`, `iss`) plus one Redis read: the
  session record `<prefix>sess:<sid>` must exist. It expires after the idle timeout unless touched
  (never past `exp`); revoking deletes it, so every client instance sees a revocation at once.
- `<prefix>sess-user:<user>` (sorted set, sid by creation time) holds a user's sessions; creating one
  more than `maxConcurrent` ends the user's oldest live ones. Two creates racing for one user can
  leave one session over the limit until the next create.

Errors: `InvalidToken` (bad signature, unknown or retired key, expired, another tenant's),
`SessionEnded` (revoked, idle or pushed out; a subclass of InvalidToken), `Refused` (OpenBao 403 or
Redis NOPERM: the server's own refusal, its message kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import redis
from jwt.algorithms import Algorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_encode

from .config import JWKS_KEY, TenantConfig
from .vault import Refused, TransitSigner

__all__ = ["Sessions", "AsyncSessions", "Session", "Claims", "InvalidToken", "SessionEnded", "Refused"]


KEYS_RECHECK = 5.0
"""Seconds between two reads of the mounted `jwks.json` (an unknown `kid` reads it at once, at most once a
second)."""

VERIFIED_CACHE = 100_000
"""Tokens whose signature check is remembered, per Sessions object (about 300 bytes each)."""


class InvalidToken(Exception):
    """The token does not validate: signature, key, issuer or expiry."""


class SessionEnded(InvalidToken):
    """The token is sound but its session is gone: revoked, idle past the timeout, or pushed out."""


@dataclass(frozen=True)
class Session:
    sid: str
    user: str
    created: float
    expires: float
    token: str = ""
    """Only on the Session `create` returns."""


@dataclass(frozen=True)
class Claims:
    sid: str
    user: str
    issued_at: float
    expires: float
    kid: str


class _TransitAlgorithm(Algorithm):
    """A PyJWT algorithm whose `sign` asks OpenBao transit; the key object is `(signer, version)`.

    A signer of None records the signing input instead (for batch signing) and signs nothing."""

    def prepare_key(self, key: Any) -> Any:
        return key

    def sign(self, msg: bytes, key: Any) -> bytes:
        signer, version = key
        if isinstance(signer, list):
            signer.append(msg)
            return b""
        return signer.sign(msg, version)

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:  # pragma: no cover - verification is PyJWT's own
        raise NotImplementedError("tokens are verified with the JWK Set")

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def from_jwk(jwk: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


@contextlib.contextmanager
def _redis_refusals():
    """Redis's own NOPERM (in a MULTI it may come wrapped as EXECABORT) as Refused; other errors pass."""
    try:
        yield
    except redis.exceptions.ResponseError as exc:
        if "NOPERM" in str(exc) or isinstance(exc, redis.exceptions.NoPermissionError):
            raise Refused("redis", "NOPERM", str(exc)) from exc
        raise


class Sessions:
    """Synchronous sessions API; thread-safe (one Redis pool, one OpenBao login)."""

    def __init__(self, config: TenantConfig, *, service_account_token: Any = None,
                 redis_client: redis.Redis | None = None) -> None:
        policy = dict(config.session_policy)
        if not policy or not config.jwks:
            raise ValueError("ConfigMap tenant-session-keys is empty: does the Tenant set spec.sessionPolicyRef?")
        self.tenant = str(policy["tenant"])
        self.prefix = config.require("REDIS_KEY_PREFIX")
        self.lifetime = float(policy["lifetimeSeconds"])
        self.idle = float(policy["idleTimeoutSeconds"])
        self.max_concurrent = int(policy["maxConcurrent"])
        self.algorithm = str(policy["jwsAlgorithm"])
        self.redis = redis_client or redis.Redis.from_url(config.require("REDIS_URL"), decode_responses=True)
        self.signer = TransitSigner(config.require("VAULT_ADDR"), config.require("VAULT_ROLE"),
                                    config.credentials.get("VAULT_AUTH_PATH", "auth/kubernetes"),
                                    str(policy["transitMount"]), str(policy["keyName"]), service_account_token)
        self._jws = PyJWS()
        self._jws.unregister_algorithm(self.algorithm)
        self._jws.register_algorithm(self.algorithm, _TransitAlgorithm())
        # The mounted ConfigMap follows each rotation (the kubelet swaps the file): read it again, so a
        # process living past `keyRotation + overlap` neither signs with a retired version nor refuses
        # tokens of the new one. Without a folder, `update_keys` is the caller's to call.
        self._jwks_file = os.path.join(config.session_dir, JWKS_KEY) if config.session_dir else None
        self._jwks_text = json.dumps(dict(config.jwks), sort_keys=True)
        self._jwks_read_at, self._unknown_kid_at = time.monotonic(), float("-inf")
        self.update_keys(config.jwks)

    def _reload_keys(self, unknown_kid: bool = False) -> bool:
        """Take the mounted `jwks.json` when it changed: read every KEYS_RECHECK seconds, or for a `kid` not
        in hand at most once a second (a flood of made-up kids costs one file read a second)."""
        now = time.monotonic()
        if self._jwks_file is None:
            return False
        if unknown_kid:
            if now - self._unknown_kid_at < 1.0:
                return False
            self._unknown_kid_at = now
        elif now - self._jwks_read_at < KEYS_RECHECK:
            return False
        self._jwks_read_at = now
        try:
            with open(self._jwks_file) as f:
                jwks = json.load(f)
        except (OSError, ValueError):
            return False  # mid-swap or gone: keep the keys in hand, try again later
        text = json.dumps(jwks, sort_keys=True)
        if text == self._jwks_text or not jwks.get("keys"):
            return False
        self._jwks_text = text
        self.update_keys(jwks)
        return True

    def update_keys(self, jwks: dict[str, Any]) -> None:
        """Take a newer JWK Set (ConfigMap `tenant-session-keys` changed): new tokens use its newest key."""
        key_set = jwt.PyJWKSet.from_dict(dict(jwks))
        self._keys = {k.key_id: k for k in key_set.keys}
        self._kid = max(self._keys, key=lambda kid: int(kid.lstrip("v")))
        self._verified: dict[str, Claims] = {}  # a retired key's tokens must be checked again

    # --- Redis layout -------------------------------------------------------------------------------
    def _session_key(self, sid: str) -> str:
        return f"{self.prefix}sess:{sid}"

    def _user_key(self, user: str) -> str:
        return f"{self.prefix}sess-user:{user}"

    # --- create -------------------------------------------------------------------------------------
    def _claims(self, user: str, now: float) -> dict[str, Any]:
        return {"iss": self.tenant, "sub": user, "sid": secrets.token_urlsafe(16), "iat": int(now),
                "exp": int(now + self.lifetime)}

    def _encode(self, claims: dict[str, Any], signer: Any) -> str:
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return self._jws.encode(payload, (signer, int(self._kid.lstrip("v"))), algorithm=self.algorithm,
                                headers={"kid": self._kid, "typ": "JWT"})

    def _store(self, pipe: Any, claims: dict[str, Any], now: float) -> None:
        sid, user = claims["sid"], claims["sub"]
        pipe.hset(self._session_key(sid), mapping={"user": user, "created": now, "expires": claims["exp"]})
        pipe.pexpire(self._session_key(sid), int(1000 * min(self.idle, self.lifetime)))
        pipe.zadd(self._user_key(user), {sid: now})
        pipe.pexpire(self._user_key(user), int(1000 * self.lifetime))
        pipe.zcard(self._user_key(user))

    def create(self, user: str) -> Session:
        """A new session for `user`: signed through OpenBao, stored in Redis; raises Refused."""
        self._reload_keys()
        now = time.time()
        claims = self._claims(user, now)
        token = self._encode(claims, self.signer)
        count = self._write([claims], now)[0]
        if count > self.max_concurrent:
            self._enforce_limit(user)
        return Session(claims["sid"], user, now, claims["exp"], token)

    def create_many(self, users: list[str]) -> list[Session]:
        """Sessions for many users with one signing request (transit `batch_input`) and one Redis round trip."""
        self._reload_keys()
        now = time.time()
        claims = [self._claims(u, now) for u in users]
        inputs: list[bytes] = []
        unsigned = [self._encode(c, inputs) for c in claims]
        signatures = self.signer.sign_many(inputs, int(self._kid.lstrip("v")))
        tokens = [t + base64url_encode(s).decode() for t, s in zip(unsigned, signatures, strict=True)]
        counts = self._write(claims, now)
        for user in {c["sub"] for c, n in zip(claims, counts, strict=True) if n > self.max_concurrent}:
            self._enforce_limit(user)
        return [Session(c["sid"], c["sub"], now, c["exp"], t) for c, t in zip(claims, tokens, strict=True)]

    def _write(self, claims: list[dict[str, Any]], now: float) -> list[int]:
        with _redis_refusals(), self.redis.pipeline(transaction=True) as pipe:
            for c in claims:
                self._store(pipe, c, now)
            replies = pipe.execute()
        return [int(r) for r in replies[4::5]]

    def _enforce_limit(self, user: str) -> None:
        """End the oldest live sessions past `maxConcurrent`; forget records that already expired."""
        live = [s.sid for s in self.list(user)]
        for sid in live[: max(0, len(live) - self.max_concurrent)]:
            self.revoke(sid, user)

    # --- validate, touch ----------------------------------------------------------------------------
    def verify(self, token: str) -> Claims:
        """Offline checks only (signature, key, issuer, expiry); no Redis read.

        A token whose signature was verified with the current JWK Set is remembered (a token never
        changes; `update_keys` forgets them all), so a token seen again costs a dict lookup and the
        expiry check instead of a signature verification.
        """
        self._reload_keys()  # a retired version leaves this process's set too
        known = self._verified.get(token)
        if known is not None:
            if known.expires <= time.time():
                raise InvalidToken("Signature has expired")
            return known
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid)
            if key is None and self._reload_keys(unknown_kid=True):  # a rotation this process has not seen yet
                key = self._keys.get(kid)
            if key is None:
                raise InvalidToken(f"signing key {kid!r} is not in the JWK Set (retired, or another tenant's)")
            data = jwt.decode(token, key.key, algorithms=[self.algorithm], issuer=self.tenant,
                              options={"require": ["exp", "iat", "sub", "sid", "iss"]})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        claims = Claims(data["sid"], data["sub"], float(data["iat"]), float(data["exp"]), kid)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def validate(self, token: str, touch: bool = False) -> Claims:
        """Signature, expiry, issuer, then the session record (revocation, idle timeout); `touch` extends it."""
        claims = self.verify(token)
        key = self._session_key(claims.sid)
        with _redis_refusals():
            alive = self.redis.pexpire(key, self._idle_ms(claims.expires)) if touch else self.redis.exists(key)
        if not alive:
            raise SessionEnded(f"session {claims.sid} ended (revoked, idle past {self.idle:g}s, or over the "
                               f"user's limit of {self.max_concurrent})")
        return claims

    def validate_many(self, tokens: list[str]) -> list[Claims | InvalidToken]:
        """Validate many tokens with one Redis round trip; each entry is Claims or the error."""
        checked: list[Claims | InvalidToken] = []
        for token in tokens:
            try:
                checked.append(self.verify(token))
            except InvalidToken as exc:
                checked.append(exc)
        sound = [c for c in checked if isinstance(c, Claims)]
        with _redis_refusals(), self.redis.pipeline(transaction=False) as pipe:
            for c in sound:
                pipe.exists(self._session_key(c.sid))
            alive = iter(pipe.execute())
        return [c if not isinstance(c, Claims) or next(alive) else SessionEnded(f"session {c.sid} ended")
                for c in checked]

    def _idle_ms(self, expires: float) -> int:
        return max(1, int(1000 * min(self.idle, expires - time.time())))

    def touch(self, token: str) -> Claims:
        """Mark the session active: its idle timeout starts again (never past `exp`)."""
        return self.validate(token, touch=True)

    # --- revoke, list -------------------------------------------------------------------------------
    def revoke(self, sid: str, user: str | None = None) -> bool:
        """End a session at once for every client; False when it was already gone. Raises Refused."""
        with _redis_refusals():
            if user is None:
                user = self.redis.hget(self._session_key(sid), "user")
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._session_key(sid))
                if user is not None:
                    pipe.zrem(self._user_key(user), sid)
                return bool(pipe.execute()[0])

    def revoke_user(self, user: str) -> int:
        """End every session of `user`; returns how many were live."""
        return sum(self.revoke(s.sid, user) for s in self.list(user))

    def list(self, user: str) -> list[Session]:
        """The user's live sessions, oldest first (records that ended are dropped from the index)."""
        with _redis_refusals():
            sids = self.redis.zrange(self._user_key(user), 0, -1)
            with self.redis.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.hgetall(self._session_key(sid))
                records = pipe.execute()
            gone = [sid for sid, r in zip(sids, records, strict=True) if not r]
            if gone:
                self.redis.zrem(self._user_key(user), *gone)
        return [Session(sid, r["user"], float(r["created"]), float(r["expires"]))
                for sid, r in zip(sids, records, strict=True) if r]


class AsyncSessions:
    """The same API for asyncio code: each call runs the synchronous one in a worker thread."""

    def __init__(self, config: TenantConfig, **kwargs: Any) -> None:
        self.sync = Sessions(config, **kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)
        if not callable(method) or name.startswith("_") or name in ("update_keys", "verify"):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call
