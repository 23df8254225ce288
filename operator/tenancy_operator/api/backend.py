"""The `Backend` kind: one instance of a backing service that tenants are placed on.

Admin credentials never sit in the Backend itself: it names a Secret in the operator's namespace.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Conditions, ObjectName, Spec, cel

__all__ = ["BackendType", "SecretRef", "Endpoint", "PostgresSettings", "SearchSettings", "BackendSpec", "BackendStatus", "ROOT_RULES"]

BackendType = Literal["postgres", "redis", "mongodb", "search", "vault"]


class SecretRef(Spec):
    """A Secret in the operator's namespace holding the backend's admin credentials."""

    name: ObjectName
    """Secret name. Keys by type: postgres `username`/`password`; redis `username`/`password`;
    vault `token`, or AppRole `roleId` and `secretId` (optional `approlePath`, default `approle`); mongodb `username`/`password` (a PostgreSQL role with CREATEROLE owning FerretDB's
    database; FerretDB passes it through) and `postgresHost`, `postgresPort`, `postgresDatabase`
    (default `ferretdb`), optional `catalogueRole` (default `ferretdb_catalogue`); search
    `username`/`password` and, with `endpoint.tls`, `ca.crt` (the CA that signed the server's
    certificate; the system's CAs otherwise)."""


class Endpoint(Spec):
    host: str = Field(pattern=r"^[A-Za-z0-9.:_-]+$", max_length=253)
    """Host name or IP address the operator connects to."""
    port: int = Field(ge=1, le=65535)
    """TCP port."""
    tls: bool = False
    """Connect with TLS."""
    public_host: str | None = Field(None, pattern=r"^[A-Za-z0-9.:_-]+$", max_length=253)
    """Host name tenants' applications use, written into their credentials Secret; defaults to host."""


class PostgresSettings(Spec):
    """Server-wide settings of a PostgreSQL Backend."""

    restrict_shared_databases: bool = True
    """Revoke CONNECT and TEMPORARY from PUBLIC on the `postgres` and `template1` databases (after
    granting CONNECT on them to the operator's admin role, which keeps working), so tenants' logins
    cannot connect there, make TEMP tables or large objects there. Needs the admin to own those
    databases or be a superuser; otherwise the Backend's `SharedDatabasesRestricted` condition is
    False with reason `InsufficientPrivilege`, and a server administrator runs the statements
    (docs/install.md). Set false on a shared server whose administrator manages those grants; the
    operator then leaves them alone. Listing database names in `pg_database` cannot be prevented."""


class SearchSettings(Spec):
    """Settings of a search Backend."""

    flavor: Literal["opensearch", "elasticsearch"] = "opensearch"
    """Which server speaks at the endpoint: `opensearch` (the security plugin's REST API, proven against
    OpenSearch 2.19 by the e2e tests) or `elasticsearch` (Elasticsearch 9.x's native security API:
    roles and users, no role mappings; covered by unit tests of its requests only, no Elasticsearch
    server has run it: docs/how-it-works.md)."""


class BackendSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("!has(self.postgres) || self.type == 'postgres'", "spec.postgres is only for type postgres"),
                cel("!has(self.search) || self.type == 'search'", "spec.search is only for type search"),
            ]
        }
    }

    type: BackendType = Field(
        json_schema_extra={"x-kubernetes-validations": [cel("self == oldSelf", "type is immutable")]}
    )
    """Which kind of service this is; immutable. search is OpenSearch with its security plugin, or
    Elasticsearch with `search.flavor: elasticsearch`; mongodb
    means FerretDB v1 on its PostgreSQL handler (docs/mongodb.md)."""
    endpoint: Endpoint
    """Where the service listens."""
    admin_secret_ref: SecretRef
    """Admin credentials the operator uses; never copied to tenants."""
    capacity: int = Field(100, ge=1, le=100000)
    """How many tenants this backend may hold; placement prefers the most free capacity. A full Backend takes
    no new tenant, also one that names it (Stalled `BackendFull`) or a migrate-database run's target; the
    count is of tenants already placed, so tenants created at the same moment may pass it together."""
    paused: bool = False
    """When true, no new tenant is placed here, also one that names it (Stalled `BackendPaused`) or a
    migrate-database run's target; placed tenants keep working."""
    postgres: PostgresSettings | None = None
    """Settings of a postgres Backend; left out, the defaults apply."""
    search: SearchSettings | None = None
    """Settings of a search Backend; left out, the defaults apply."""


class BackendStatus(Spec):
    model_config = Spec.model_config | {"extra": "allow"}

    observed_generation: int | None = None
    phase: str | None = None
    """Ready, Unavailable or Stalled (this operator version has no adapter for its type)."""
    conditions: Conditions
    """Ready (False while the operator cannot reach the server, with its error; calls to it then back off,
    see the tenancy_backend_circuit_open metric); postgres also SharedDatabasesRestricted."""
    server_version: str | None = None
    """The version the server reported."""
    tenants_placed: int = 0
    """How many tenants are placed here."""
    last_checked_at: str | None = None
    """When a probe last changed this status (a probe that finds nothing new writes nothing)."""


ROOT_RULES: list[dict[str, str]] = []
