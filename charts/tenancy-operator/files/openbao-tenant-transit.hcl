# Policy `tenancy-tenant-transit`: encrypt and decrypt with the tenant's transit key, named as its
# namespace (`tenant-<name>`). Written by the platform admin like openbao-tenant-kv.hcl.
path "transit/encrypt/{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}" { capabilities = ["update"] }
path "transit/decrypt/{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}" { capabilities = ["update"] }
