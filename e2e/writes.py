"""Writes to the API server and to every backend, counted from each server's own view.

- API server: its audit log (write verbs by the operator's user; see audit.py).
- PostgreSQL: rows inserted, updated or deleted in the system catalogs, from `pg_stat_all_tables`
  read in the `postgres` database the operator works in; the shared catalogs (pg_authid,
  pg_auth_members, pg_database, pg_db_role_setting, pg_shdescription...) show there too, so every
  CREATE/ALTER/GRANT/REVOKE/COMMENT counts. pg_statistic is left out: only ANALYZE (autovacuum)
  writes it. Also the audit trail's tables (database `tenancy_audit`, `pg_stat_user_tables`).
  Backends flush these counters up to 10 s late, hence `PG_FLUSH_SECONDS`.
- Redis: `INFO commandstats` calls of every command flagged `write`, plus the admin commands that
  change state (ACL SETUSER/DELUSER, CLIENT KILL...).
- OpenSearch and FerretDB (`opensearch()`, `ferretdb()`, read on their own: not every run has tenants
  there): the cluster state version and the documents indexed or deleted on the node; the rows
  written per table of FerretDB's PostgreSQL database.
- OpenBao: its request counters per operation and mount (`sys/metrics`, prometheus format, which
  dev mode serves): create, update and delete requests. (An audit device would be nicer, but OpenBao
  refuses to enable one through the API.)

Each counter is the whole server's, so the count is exact only while nothing else writes: e2e runs
hold the lock, and the operator under test is the only writer in the window.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

import requests

from . import admin, audit

__all__ = ["Snapshot", "snapshot", "delta", "grown", "opensearch", "ferretdb", "PG_FLUSH_SECONDS", "OPERATOR_USER"]

OPERATOR_USER = "system:serviceaccount:tenancy-system:tenancy-operator"
PG_FLUSH_SECONDS = 11
_PG_SQL = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS writes FROM pg_stat_all_tables
WHERE schemaname = 'pg_catalog' AND relname <> 'pg_statistic'
"""
# State-changing commands Redis does not flag `write` (they are admin or connection commands).
_REDIS_ADMIN_WRITES = {"acl|setuser", "acl|deluser", "acl|load", "acl|save", "client|kill", "config|set",
                       "config|rewrite", "config|resetstat", "script|flush", "function|flush"}
_BAO_ROUTE = re.compile(r"^vault_route_(create|update|delete)_(\S*?)_?count(?:\{[^}]*\})? ([0-9.e+]+)$")


@dataclass
class Snapshot:
    audit_offset: audit.Mark
    postgres: Counter = field(default_factory=Counter)
    redis: Counter = field(default_factory=Counter)
    openbao: Counter = field(default_factory=Counter)


AUDIT_DATABASE = "tenancy_audit"
"""The operator's audit trail (its entries and signed heads): no change, no entry, so none while idle."""


def _postgres() -> Counter:
    found = Counter({r["relname"]: int(r["writes"]) for r in admin.pg_admin(_PG_SQL)})
    if admin.pg_admin("SELECT 1 FROM pg_database WHERE datname = $1", AUDIT_DATABASE):
        found.update({f"{AUDIT_DATABASE}.{r['relname']}": int(r["writes"]) for r in admin.pg_admin(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS writes FROM pg_stat_user_tables",
            database=AUDIT_DATABASE)})
    return found


def _redis() -> Counter:
    client = admin.redis_admin()
    try:
        stats = client.info("commandstats")
        flagged = set()
        for name, info in client.command().items():
            if "write" in (info.get("flags") or []):
                flagged.add(name)
            flagged.update(sub[0] for sub in info.get("subcommands") or [] if "write" in (sub[2] or []))
    finally:
        client.close()
    counts = Counter()
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        if name in flagged or name in _REDIS_ADMIN_WRITES:
            counts[name] = int(value["calls"])
    return counts


def _openbao() -> Counter:
    reply = requests.get(f"{os.environ['VAULT_ADDR']}/v1/sys/metrics", params={"format": "prometheus"},
                         headers={"X-Vault-Token": os.environ["VAULT_TOKEN"]}, timeout=10)
    reply.raise_for_status()
    counts = Counter()
    for line in reply.text.splitlines():
        match = _BAO_ROUTE.match(line)
        if match:
            counts[f"{match.group(1)} {match.group(2) or '/'}"] += int(float(match.group(3)))
    return counts


def opensearch() -> Counter:
    """OpenSearch: the cluster state version (templates, indices, mappings) and the documents indexed
    or deleted on the node (the security plugin keeps roles, mappings and users as documents)."""
    import ssl

    from opensearchpy import OpenSearch

    from .backends_fixtures import search_env

    env = search_env()
    client = OpenSearch(hosts=[env["SEARCH_URL"]], http_auth=(env["SEARCH_ADMIN_USERNAME"], env["SEARCH_ADMIN_PASSWORD"]),
                        ssl_context=ssl.create_default_context(cafile=env["SEARCH_CA_FILE"]), timeout=10, max_retries=0)
    stats = client.nodes.stats(metric="indices", index_metric="indexing")["nodes"]
    return Counter({"cluster state version": int(client.cluster.state(metric="version")["version"]),
                    "index/delete ops": sum(n["indices"]["indexing"]["index_total"] + n["indices"]["indexing"]["delete_total"]
                                            for n in stats.values())})


def ferretdb() -> Counter:
    """FerretDB: rows inserted, updated or deleted per table of its PostgreSQL database (documents are
    rows there), shared catalogs included; pg_statistic and its TOAST table left out (only ANALYZE
    writes them: autovacuum's, whenever the server decides)."""
    from .tenant_mongo import ferret_pg

    rows = ferret_pg("SELECT schemaname || '.' || relname AS t, n_tup_ins + n_tup_upd + n_tup_del AS w "
                     "FROM pg_stat_all_tables WHERE relid NOT IN ('pg_catalog.pg_statistic'::regclass, "
                     "(SELECT reltoastrelid FROM pg_class WHERE oid = 'pg_catalog.pg_statistic'::regclass))")
    return Counter({r["t"]: int(r["w"]) for r in rows})


def snapshot() -> Snapshot:
    return Snapshot(audit.mark(), _postgres(), _redis(), _openbao())


def grown(before: Counter, after: Counter) -> Counter:
    # A server restarted in between starts its counters again from 0: count what it holds now.
    if any(after[k] < before.get(k, 0) for k in after):
        return +after
    return Counter({k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)})


def delta(before: Snapshot, after: Snapshot | None = None) -> dict[str, Counter]:
    """Writes per target ("api-server", "postgres", "redis", "openbao") between two snapshots, by detail."""
    after = after or snapshot()
    return {
        "api-server": Counter({" ".join(k): v for k, v in audit.writes(before.audit_offset, OPERATOR_USER).items()}),
        "postgres": grown(before.postgres, after.postgres),
        "redis": grown(before.redis, after.redis),
        "openbao": grown(before.openbao, after.openbao),
    }


def report(counts: dict[str, Counter], seconds: float) -> str:
    """One line per target: total, per minute, and the top details."""
    lines = []
    for target, detail in counts.items():
        total = sum(detail.values())
        top = ", ".join(f"{k}={v}" for k, v in detail.most_common(5))
        lines.append(f"  {target:<10} {total:>6} writes ({total * 60 / seconds:.1f}/min){'  ' + top if top else ''}")
    return "\n".join(lines)
