-- The operator's PostgreSQL admin, as a managed service (RDS, Cloud SQL, Azure) gives it. Run as a
-- superuser by platform/admins.sh with psql -v admin=<name> -v password=<password>; idempotent.
-- docs/backend-admins.md says what each line is for and what the role still can do.
SELECT format('CREATE ROLE %I LOGIN', :'admin')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin') \gexec
-- CREATEROLE: make, alter, comment on and drop the tenant roles. CREATEDB: make tenant databases.
-- Nothing else: no SUPERUSER, REPLICATION or BYPASSRLS; INHERIT so a membership it takes for the
-- moment (a tenant's owner role, backends/postgres_admin.py) gives it that role's privileges.
SELECT format('ALTER ROLE %I LOGIN CREATEROLE CREATEDB INHERIT NOSUPERUSER NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'admin', :'password') \gexec
-- End tenant sessions (suspend, rotation, delete) without being a member of the tenant's roles.
SELECT format('GRANT pg_signal_backend TO %I', :'admin')
  WHERE NOT pg_has_role(:'admin', 'pg_signal_backend', 'MEMBER') \gexec
-- Read database sizes (tenancy_tenant_database_bytes, status usage) of databases it may not connect
-- to: statistics only, no data. Managed services' admin roles hold it through pg_monitor.
SELECT format('GRANT pg_read_all_stats TO %I', :'admin')
  WHERE NOT pg_has_role(:'admin', 'pg_read_all_stats', 'MEMBER') \gexec
-- Never: pg_read_all_data, pg_write_all_data, pg_read_server_files, pg_execute_server_program.
SELECT format('REVOKE %I FROM %I', r, :'admin')
  FROM unnest(ARRAY['pg_read_all_data', 'pg_write_all_data', 'pg_read_server_files', 'pg_write_server_files',
                    'pg_execute_server_program']) r
  WHERE pg_has_role(:'admin', r, 'MEMBER') \gexec
-- Its pool connects to `postgres`; PUBLIC may not (spec.postgres.restrictSharedDatabases does for
-- `postgres` and `template1` what a non-superuser admin cannot: their owner is the superuser).
SELECT format('GRANT CONNECT ON DATABASE postgres TO %I', :'admin')
  WHERE NOT has_database_privilege(:'admin', 'postgres', 'CONNECT')
     OR has_database_privilege('public', 'postgres', 'CONNECT') \gexec
SELECT 'REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC'
  WHERE has_database_privilege('public', 'postgres', 'CONNECT') OR has_database_privilege('public', 'postgres', 'TEMPORARY') \gexec
SELECT 'REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC'
  WHERE has_database_privilege('public', 'template1', 'CONNECT') OR has_database_privilege('public', 'template1', 'TEMPORARY') \gexec
