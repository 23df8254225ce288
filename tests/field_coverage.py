"""Every field a user reads in `kubectl explain` is true: the registry tests/unit/api/test_field_coverage.py checks.

One entry per leaf field of every kind's spec (`Kind.spec.a.b`; list items have no index). Each
claim is one of:

- `test: <file>::<test function>`: that test proves the field acts. The coverage test parses the file
  and fails when the function is gone or renamed.
- `refused: <text>`: the API server refuses values that would do nothing. The coverage test finds an
  `x-kubernetes-validations` rule at that field (or its object) whose message contains <text>.
- `not-built: NotImplemented`: a spec asking for it gets `Stalled=True`, reason NotImplemented, naming
  the field (`tenancy_operator/reconcile/unbuilt.py` must report it).

A field may carry several claims (a built value and an unbuilt one). When you add a field, add its
entry here; when you build an unbuilt feature, swap its `not-built` for the test that proves it and
drop its entry from reconcile/unbuilt.py.
"""

from __future__ import annotations

NOT_BUILT = "not-built: NotImplemented"

FIELDS: dict[str, list[str]] = {
    # --- Tenant -------------------------------------------------------------------------------------
    "Tenant.spec.displayName": [
        "test: tests/unit/cli/test_render.py::test_status_shows_each_part_with_condition_reason_backend_and_message",
        "test: e2e/test_names_placement.py::test_hostile_free_text_never_reaches_a_backend",
    ],
    "Tenant.spec.owners.kind": [
        "test: e2e/test_tenant_core.py::test_owner_rbac_is_fenced_to_their_namespace",
        "test: tests/unit/reconcile/test_namespace.py::test_service_account_owner_binds_in_its_namespace",
    ],
    "Tenant.spec.owners.name": ["test: e2e/test_tenant_core.py::test_owner_rbac_is_fenced_to_their_namespace",
                                "test: e2e/test_names_ownership.py::test_input_that_can_never_work_is_refused_at_apply",
                                "refused: may not be a Kubernetes system: name"],
    "Tenant.spec.state": ["test: e2e/test_suspend.py::test_suspend_and_resume",
                          "test: e2e/test_archive.py::test_archive_round_trip",
                          "refused: spec.state Archived needs spec.vault.enabled"],
    "Tenant.spec.restoreFrom.archive": ["test: e2e/test_archive.py::test_archive_round_trip",
                                        "test: e2e/test_archive.py::test_tampered_archive_is_refused_naming_the_file",
                                        "test: e2e/test_transit_key_owner.py::test_a_name_held_by_a_deleted_tenants_archives"],
    "Tenant.spec.restoreFrom.overwrite": ["test: e2e/test_archive.py::test_tampered_archive_is_refused_naming_the_file"],
    "Tenant.spec.adoptNamespace": ["test: e2e/test_tenant_core.py::test_namespace_owned_by_someone_else_stalls"],
    "Tenant.spec.adoptRetainedData": ["test: e2e/test_names_ownership.py::test_reused_name_inherits_retained_data_only_when_asked"],
    "Tenant.spec.deletionProtection": [
        "test: e2e/test_install_chart.py::test_protected_tenant_cannot_be_deleted_until_lifted"],
    "Tenant.spec.quota.cpu": ["test: e2e/test_tenant_core.py::test_spec_change_reconciles_to_the_new_generation"],
    "Tenant.spec.quota.memory": ["test: tests/unit/reconcile/test_namespace.py::test_quota_maps_every_field"],
    "Tenant.spec.quota.pods": ["test: e2e/test_tenant_core.py::test_api_server_enforces_pod_security_and_quota"],
    "Tenant.spec.quota.storage": ["test: tests/unit/reconcile/test_namespace.py::test_quota_maps_every_field"],
    "Tenant.spec.quota.workflowRuns": [
        "test: e2e/test_workflows.py::test_runs_past_the_tenant_quota_are_refused_by_the_api_server"],
    "Tenant.spec.postgres.enabled": ["test: e2e/test_isolation_matrix.py::test_isolation_matrix"],
    "Tenant.spec.postgres.backend": [
        "test: e2e/test_backend_lifecycle.py::test_outage_degrades_only_tenants_on_that_backend",
        "test: tests/unit/handlers/test_explicit_backend.py::test_a_named_backend_is_used_for_every_service",
        "test: e2e/test_migrate_database.py::test_moves_100k_rows_to_another_server_and_the_operator_keeps_it_there",
    ],
    "Tenant.spec.postgres.connectionLimit": [
        "test: e2e/test_fields.py::test_connection_limit_is_the_databases_and_follows_the_spec"],
    "Tenant.spec.redis.enabled": ["test: e2e/test_isolation_matrix.py::test_isolation_matrix"],
    "Tenant.spec.redis.backend": [
        "test: tests/unit/handlers/test_explicit_backend.py::test_a_named_backend_is_used_for_every_service"],
    "Tenant.spec.mongodb.enabled": ["test: e2e/test_mongodb.py::test_crud_in_own_database_and_the_server_refuses_the_other"],
    "Tenant.spec.mongodb.backend": ["test: tests/unit/handlers/test_explicit_backend.py::test_a_named_backend_is_used_for_every_service"],
    "Tenant.spec.search.enabled": ["test: e2e/test_isolation_matrix.py::test_isolation_matrix",
                                   "test: e2e/test_search.py::test_reclaim"],
    "Tenant.spec.search.backend": ["test: e2e/test_search.py::test_outage_degrades_only_search_tenants_and_recovers"],
    "Tenant.spec.search.maxShards": ["test: e2e/test_search.py::test_shard_limit_fences_growth_until_indices_are_deleted",
                                     "test: tests/unit/backends/test_search_es.py::"
                                     "test_elasticsearch_role_is_fenced_at_the_limit_and_given_back_after_a_delete"],
    "Tenant.spec.vault.enabled": ["test: e2e/test_isolation_matrix.py::test_isolation_matrix"],
    "Tenant.spec.vault.backend": [
        "test: tests/unit/handlers/test_explicit_backend.py::test_a_named_backend_is_used_for_every_service"],
    # true (the default) grants the transit key; false leaves it out of the policy and the Secret.
    "Tenant.spec.vault.transitKey": ["test: e2e/test_doors.py::test_vault_flags_shape_the_policy_the_secret_and_what_a_token_may_do",
                                    "test: tests/unit/backends/test_vault_policy.py::test_the_role_grants_exactly_what_the_flags_enable"],
    "Tenant.spec.vault.kv": ["test: e2e/test_doors.py::test_vault_flags_shape_the_policy_the_secret_and_what_a_token_may_do",
                            "test: tests/unit/backends/test_vault_policy.py::test_the_role_grants_exactly_what_the_flags_enable"],
    "Tenant.spec.credentials.rotateEvery": ["test: tests/unit/reconcile/test_credentials.py::test_rotation_due",
                                            "test: e2e/test_credentials_robustness.py::test_deleted_secret_is_a_rotation_from_status_never_a_reset"],
    "Tenant.spec.credentials.overlap": ["test: e2e/test_rotation.py::test_three_rotations_under_load"],
    "Tenant.spec.credentials.restartWorkloads": ["test: e2e/test_rotation.py::test_three_rotations_under_load"],
    "Tenant.spec.cachePolicyRef": [
        "test: e2e/test_cache_policy.py::test_missing_policy_is_policy_not_found_until_it_exists_and_changes_reach_the_configmap",
        "refused: spec.cachePolicyRef needs spec.redis.enabled"],
    "Tenant.spec.sessionPolicyRef": ["test: e2e/test_sessions.py::test_missing_policy_is_policy_not_found_and_recovers",
                                     "refused: spec.sessionPolicyRef needs spec.redis.enabled and spec.vault.enabled"],
    "Tenant.spec.lifecyclePolicyRef": [
        "test: e2e/test_backend_lifecycle.py::test_delete_with_reclaim_delete_removes_everything"],
    "Tenant.spec.autoscaling.name": [
        "test: e2e/test_autoscaling.py::test_observe_never_writes_the_hpa_and_shows_the_forecast"],
    "Tenant.spec.autoscaling.targetRef.kind": [
        "test: tests/unit/autoscaling/test_autoscaling_hpa.py::test_target_ref_is_the_hpas_scale_target"],
    "Tenant.spec.autoscaling.targetRef.name": [
        "test: tests/unit/autoscaling/test_autoscaling_hpa.py::test_target_ref_is_the_hpas_scale_target",
        "test: e2e/test_autoscaling.py::test_floor_lifts_min_replicas_before_the_peak_and_releases_it_after",
    ],
    "Tenant.spec.autoscaling.metric.prometheus": [
        "test: e2e/test_autoscaling.py::test_floor_lifts_min_replicas_before_the_peak_and_releases_it_after"],
    "Tenant.spec.autoscaling.capacityPerReplica": [
        "test: tests/unit/autoscaling/test_autoscaling_hpa.py::"
        "test_fractional_per_pod_target_is_a_milli_quantity_and_floor_is_clamped"],
    "Tenant.spec.autoscaling.minReplicas": [
        "test: tests/unit/autoscaling/test_autoscaling_hpa.py::"
        "test_observe_and_external_metric_keep_the_rules_own_min_replicas"],
    "Tenant.spec.autoscaling.maxReplicas": [
        "test: tests/unit/autoscaling/test_autoscaling_hpa.py::"
        "test_fractional_per_pod_target_is_a_milli_quantity_and_floor_is_clamped"],
    "Tenant.spec.autoscaling.targetUtilization": [
        "test: tests/unit/autoscaling/test_autoscaling_hpa.py::"
        "test_fractional_per_pod_target_is_a_milli_quantity_and_floor_is_clamped"],
    "Tenant.spec.autoscaling.leadTime": [
        "test: tests/unit/autoscaling/test_autoscaling_status.py::test_feature_config_horizon_is_lead_plus_one_step",
        "test: e2e/test_autoscaling.py::test_floor_lifts_min_replicas_before_the_peak_and_releases_it_after",
    ],
    "Tenant.spec.autoscaling.window": [
        "test: e2e/test_autoscaling_signals.py::test_injected_level_shift_is_an_anomaly"],
    "Tenant.spec.autoscaling.mode": [
        "test: e2e/test_autoscaling.py::test_floor_lifts_min_replicas_before_the_peak_and_releases_it_after",
        "test: e2e/test_autoscaling.py::test_observe_never_writes_the_hpa_and_shows_the_forecast",
        "test: e2e/test_autoscaling_signals.py::test_external_metric_exports_the_forecast_and_leaves_sizing_to_the_hpa",
    ],
    # --- Backend ------------------------------------------------------------------------------------
    # postgres, redis, search, vault and mongodb act.
    "Backend.spec.postgres.restrictSharedDatabases": [
        "test: e2e/test_doors.py::test_shared_databases_are_closed_to_tenants_and_the_admin_keeps_working",
        "test: e2e/test_doors.py::test_an_admin_that_may_not_restrict_shared_databases_says_so_and_the_backend_stays_ready"],
    "Backend.spec.search.flavor": [
        "test: tests/unit/handlers/test_targets.py::test_search_flavor_reaches_the_adapter_and_defaults_to_opensearch",
        "test: tests/unit/backends/test_search_es.py::test_first_ensure_sends_role_template_and_user_bodies_through_the_search_adapter",
        "test: e2e/test_isolation_matrix.py::test_isolation_matrix"],
    "Backend.spec.type": ["test: e2e/test_isolation_matrix.py::test_isolation_matrix",
                          "refused: type is immutable"],
    "Backend.spec.endpoint.host": ["test: e2e/test_isolation_matrix.py::test_isolation_matrix"],
    "Backend.spec.endpoint.port": ["test: e2e/test_backend_lifecycle.py::test_outage_degrades_only_tenants_on_that_backend"],
    "Backend.spec.endpoint.tls": [
        "test: tests/unit/backends/test_endpoint_settings.py::test_tls_asks_each_client_for_tls",
        "test: e2e/test_search.py::test_wrong_admin_secret_or_untrusted_certificate_is_named"],
    "Backend.spec.endpoint.publicHost": [
        "test: e2e/test_fields.py::test_public_host_is_what_tenants_are_given"],
    "Backend.spec.adminSecretRef.name": [
        "test: e2e/test_backend_lifecycle.py::test_backend_holding_tenants_is_not_deleted"],
    "Backend.spec.capacity": ["test: e2e/test_names_placement.py::test_placement_by_free_capacity_and_sticky",
                              "test: tests/unit/handlers/test_explicit_backend.py::test_a_named_backend_paused_or_full_takes_no_new_tenant_and_keeps_those_it_holds",
                              "test: tests/unit/workflows/test_migrate_database.py::test_freeze_refuses_a_target_that_takes_no_new_tenant"],
    "Backend.spec.paused": ["test: tests/unit/reconcile/test_placement.py::test_no_fit_says_why",
                            "test: tests/unit/handlers/test_explicit_backend.py::test_a_named_backend_paused_or_full_takes_no_new_tenant_and_keeps_those_it_holds",
                            "test: tests/unit/workflows/test_migrate_database.py::test_freeze_refuses_a_target_that_takes_no_new_tenant"],
    # --- CachePolicy -------------------------------------------------------------------------------
    "CachePolicy.spec.l1.maxSize": ["test: tests/unit/client/test_cache.py::test_l1_keeps_max_bytes_least_recently_used_going_first"],
    "CachePolicy.spec.l1.ttl": ["test: tests/unit/client/test_cache.py::test_l1_entries_expire_after_the_ttl"],
    "CachePolicy.spec.tiers.name": ["test: e2e/test_cache_policy.py::test_library_applies_prefix_tiers_and_ttls_and_b_is_refused_by_the_server"],
    "CachePolicy.spec.tiers.ttl": ["test: e2e/test_cache_policy.py::test_library_applies_prefix_tiers_and_ttls_and_b_is_refused_by_the_server"],
    "CachePolicy.spec.defaultTtl": ["test: e2e/test_cache_policy.py::test_library_applies_prefix_tiers_and_ttls_and_b_is_refused_by_the_server"],
    "CachePolicy.spec.memoryBudget": ["test: e2e/test_cache_policy.py::test_tenant_aware_eviction_keeps_every_key_of_b",
                                      "refused: memoryBudget must be at least 64Ki",
                                      "refused: memoryBudget must not be smaller than l1.maxSize"],
    "CachePolicy.spec.evictionOrder": ["test: e2e/test_cache_policy.py::test_tenant_aware_eviction_keeps_every_key_of_b",
                                       "test: e2e/test_cache_policy.py::test_ttl_order_evicts_the_nearest_expiry_first_and_keys_without_ttl_last",
                                       "test: tests/unit/reconcile/test_cache.py::test_coldest_first_by_each_order"],
    "CachePolicy.spec.compressionThreshold": [
        "test: tests/unit/client/test_cache.py::test_values_above_the_threshold_are_compressed"],
    # --- TenantSessionPolicy (issue 14) ---------------------------------------------------------------
    "TenantSessionPolicy.spec.lifetime": ["test: e2e/test_sessions.py::test_revocation_idle_timeout_and_max_sessions_hold"],
    "TenantSessionPolicy.spec.idleTimeout": ["test: e2e/test_sessions.py::test_revocation_idle_timeout_and_max_sessions_hold"],
    "TenantSessionPolicy.spec.maxConcurrent": ["test: e2e/test_sessions.py::test_revocation_idle_timeout_and_max_sessions_hold"],
    "TenantSessionPolicy.spec.signingAlgorithm": [
        "test: e2e/test_sessions.py::test_session_key_rotates_and_old_tokens_retire_after_the_overlap",  # ecdsa-p256
        "test: e2e/test_sessions.py::test_revocation_idle_timeout_and_max_sessions_hold",  # ed25519
        "test: tests/unit/backends/test_vault_sessions.py::test_jwks_of_each_algorithm_verifies_a_transit_style_signature"],
    "TenantSessionPolicy.spec.keyRotation": ["test: e2e/test_sessions.py::test_session_key_rotates_and_old_tokens_retire_after_the_overlap",
                                            "refused: keyRotation must be at least 10s"],
    "TenantSessionPolicy.spec.overlap": ["test: e2e/test_sessions.py::test_session_key_rotates_and_old_tokens_retire_after_the_overlap",
                                        "test: tests/unit/backends/test_vault_sessions.py::test_live_versions_end_overlap_after_their_successor"],
    # --- WorkflowRun (issue 16) ----------------------------------------------------------------------
    "WorkflowRun.spec.tenant": ["test: e2e/test_workflows.py::test_rotate_credentials_rotates_once_across_a_sigkill",
                                "test: e2e/test_workflows.py::test_offboard_from_a_tenant_namespace_is_refused_by_the_api_server"],
    "WorkflowRun.spec.workflow": [
        "test: e2e/test_workflows.py::test_rotate_credentials_rotates_once_across_a_sigkill",
        "test: e2e/test_workflows.py::test_verify_isolation_on_schedule_fails_when_a_grant_lets_a_probe_through",
        "test: e2e/test_workflow_archive.py::test_export_keeps_the_tenant_ready_and_its_archive_verifies",
        "test: e2e/test_workflow_archive.py::test_offboard_then_restore_into_another_tenant",
        "test: e2e/test_workflow_archive.py::test_restore_of_a_tampered_archive_fails_naming_the_file"],
    "WorkflowRun.spec.parameters": [
        "test: e2e/test_workflows.py::test_verify_isolation_on_schedule_fails_when_a_grant_lets_a_probe_through",
        "test: e2e/test_workflow_archive.py::test_offboard_then_restore_into_another_tenant",
        "refused: takes no parameters",
        "refused: workflow migrate-database takes only the parameters targetBackend"],
    "WorkflowRun.spec.cancel": ["test: e2e/test_workflows.py::test_second_run_waits_for_the_tenant_then_runs",
                                "test: tests/unit/workflows/test_engine.py::test_cancel_stops_a_running_step_and_compensates",
                                "test: e2e/test_workflows.py::test_cancel_ends_a_schedule"],
    "WorkflowRun.spec.ttlSecondsAfterFinished": [
        "test: e2e/test_workflows.py::test_second_run_waits_for_the_tenant_then_runs",
        "refused: ttlSecondsAfterFinished is for a run without schedule"],
    "WorkflowRun.spec.schedule": [
        "test: e2e/test_workflows.py::test_verify_isolation_on_schedule_fails_when_a_grant_lets_a_probe_through",
        "refused: schedule is only for workflow verify-isolation",
        "test: e2e/test_workflows.py::test_a_schedule_of_seconds_is_refused_at_apply_and_one_that_never_comes_is_stalled"],
    # --- LifecyclePolicy ----------------------------------------------------------------------------
    "LifecyclePolicy.spec.reclaim": [
        "test: e2e/test_backend_lifecycle.py::test_delete_with_reclaim_delete_removes_everything",
        "test: e2e/test_doors.py::test_retain_keeps_the_data_and_closes_every_door",
        "test: e2e/test_archive.py::test_tampered_archive_is_refused_naming_the_file",
        "test: e2e/test_transit_key_owner.py::test_a_name_held_by_a_deleted_tenants_archives",
    ],
    "LifecyclePolicy.spec.retention": [
        "test: e2e/test_archive.py::test_retention_purges_on_time",
        "test: e2e/test_transit_key_owner.py::test_a_name_held_by_a_deleted_tenants_archives"],
    "LifecyclePolicy.spec.suspendRevokesLogins": [
        "test: e2e/test_suspend_workloads.py::test_suspend_scales_workloads_to_zero_cuts_connections_and_resume_restores",
        "test: e2e/test_suspend_workloads.py::test_suspend_that_keeps_logins_still_stops_workloads"],
    "LifecyclePolicy.spec.inactivitySuspendAfter": [
        "test: e2e/test_suspend_workloads.py::test_inactivity_suspends_an_idle_tenant_by_annotation_and_resume_lifts_it"],
    "LifecyclePolicy.spec.ownerExportsKept": [
        "test: e2e/test_owner_exports_bounded.py::test_owner_exports_pile_up",
        "test: e2e/test_owner_exports_bounded.py::test_owner_exports_kept_counts_only_the_owners_exports"],
    "LifecyclePolicy.spec.deletionProtection": [
        "test: e2e/test_deletion_safety.py::test_lifecycle_policy_protection_is_enforced_and_teardown_keeps_the_data"],
}
