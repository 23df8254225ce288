# Policy `tenancy-tenant-session`: sign and verify with the tenant's session key in its own mount,
# named as its namespace (`tenant-<name>`). Written by the platform admin like openbao-tenant-kv.hcl.
path "transit-sessions/sign/{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}" { capabilities = ["update"] }
path "transit-sessions/verify/{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}" { capabilities = ["update"] }
