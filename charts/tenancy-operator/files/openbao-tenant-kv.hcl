# Policy `tenancy-tenant-kv`: a tenant workload's KV v2 folder `tenants/<its namespace>/`, that is
# `tenants/tenant-<name>/` (api/names.py). The platform admin writes it once (platform/admins.sh,
# docs/backend-admins.md) with @KUBERNETES_ACCESSOR@ replaced by the accessor of the `kubernetes/`
# auth method; the operator only names it in a tenant's login role. The folder comes from the
# token's own Kubernetes auth login (the ServiceAccount's namespace, checked by a TokenReview), so
# one fixed text fences every tenant to its own paths, and a token from any other login gets none.
path "tenants/data/{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "tenants/metadata/{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}/*" { capabilities = ["read", "list", "delete"] }
