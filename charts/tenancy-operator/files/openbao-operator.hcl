# The tenancy operator's OpenBao policy: tenant objects only. platform/admins.sh (and a production
# install, see docs/backend-admins.md) writes it as policy `tenancy-operator` and gives it to the
# AppRole `tenancy-operator` the operator logs in with. Every tenant object is named `tenant-<name>`
# (api/names.py); the mounts, the Kubernetes auth method and its config, and the three fixed tenant
# policies `tenancy-tenant-kv|transit|session` (openbao-tenant-*.hcl) are the platform's, not the
# operator's. The operator writes no policy text: a credential that could would mint any token.

# Check the mounts and auth methods it relies on exist (it does not make them: no sys/mounts/<path>).
path "sys/mounts" { capabilities = ["read"] }
path "sys/auth" { capabilities = ["read"] }

# See that the platform configured Kubernetes auth (a Backend says so when not); never change it: a
# credential that could point it at another cluster would log in as any ServiceAccount it likes.
path "auth/kubernetes/config" { capabilities = ["read"] }

# See that the platform wrote the fixed tenant policies the login roles name.
path "sys/policies/acl/tenancy-tenant-*" { capabilities = ["read"] }

# Remove the per-tenant policy `tenant-<name>` earlier versions wrote (the body is never written).
path "sys/policies/acl/tenant-*" { capabilities = ["read", "delete"] }

# Each tenant's login role `tenant-<name>` in the Kubernetes auth method, fenced by the server: it
# binds only ServiceAccount `tenant-app`, only in one `tenant-*` namespace (no list, no glob), and
# grants only a set of the fixed tenant policies, whose paths follow the login's own namespace. Every
# other field (`policies`, `token_type`, `token_period`, `alias_name_source`, ...) is refused. Values
# are comma strings: the server compares a JSON list with nothing here, so lists are refused too.
path "auth/kubernetes/role/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "bound_service_account_names" = ["tenant-app"]
    "bound_service_account_namespaces" = ["tenant-*"]
    "token_policies" = [
      "",
      "tenancy-tenant-kv",
      "tenancy-tenant-transit",
      "tenancy-tenant-session",
      "tenancy-tenant-kv,tenancy-tenant-transit",
      "tenancy-tenant-kv,tenancy-tenant-session",
      "tenancy-tenant-transit,tenancy-tenant-session",
      "tenancy-tenant-kv,tenancy-tenant-transit,tenancy-tenant-session",
    ]
    "token_ttl" = []
  }
  # "*,*" is any value holding a comma (a second namespace), "***" any holding a `*` (a glob).
  denied_parameters = {
    "bound_service_account_namespaces" = ["*,*", "***"]
  }
}

# Each tenant's transit key (and its config: deletion_allowed before delete), and the archive's data
# key wrapped and unwrapped with it.
path "transit/keys/tenant-*" { capabilities = ["create", "read", "update", "delete"] }
path "transit/encrypt/tenant-*" { capabilities = ["update"] }
path "transit/decrypt/tenant-*" { capabilities = ["update"] }

# Each tenant's session-signing key (made, rotated, trimmed, config, deleted) in its own mount.
path "transit-sessions/keys/tenant-*" { capabilities = ["create", "read", "update", "delete"] }

# The `tenants` KV v2 mount holds only tenants: ownership records (metadata of `tenants/<name>`),
# and, for archive and restore, the tenants' data; delete removes both.
path "tenants/metadata/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "tenants/data/*" { capabilities = ["create", "read", "update", "delete"] }

# Revoke a closed tenant's outstanding tokens: list accessors (sudo: OpenBao requires it), look each
# up to see which role issued it, revoke those of `tenant-*` roles.
path "auth/token/accessors" { capabilities = ["list", "sudo"] }
path "auth/token/lookup-accessor" { capabilities = ["update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }

# Its own token: renew it before it expires, and ask what it may do (a Backend names what is missing).
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "sys/capabilities-self" { capabilities = ["update"] }

# The audit trail (docs/audit.md): sign the chain's head with its own key `chain` (made once, never
# exportable), MAC each entry it appends with the same key (hmac) and check those MACs before
# signing (verify), and keep the newest signed head outside the database. Both mounts are the platform's.
path "tenancy-audit/keys/chain" { capabilities = ["create", "read", "update"] }
path "tenancy-audit/sign/chain" { capabilities = ["update"] }
path "tenancy-audit/hmac/chain" { capabilities = ["update"] }
path "tenancy-audit/verify/chain" { capabilities = ["update"] }
path "tenancy-audit-kv/data/head" { capabilities = ["create", "read", "update"] }
