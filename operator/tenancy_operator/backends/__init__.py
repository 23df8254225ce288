"""Adapters to external systems, one module each, all with the same verbs (see base.py)."""

__all__ = ["base", "circuit", "kube", "mongodb", "postgres", "postgres_sql", "redis_acl", "registry", "vault"]
