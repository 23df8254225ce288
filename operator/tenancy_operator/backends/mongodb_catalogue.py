"""A fence around FerretDB's catalogue rows: PostgreSQL refuses a row FerretDB could not read.

Why: a tenant's login role may write its database's catalogue table `_ferretdb_database_metadata`
(FerretDB writes it as the client when the tenant makes a collection or an index), and it can log in
to PostgreSQL directly. A row FerretDB cannot decode (found: `{"_id": "x", "table": "y"}`, no `$s`)
makes FerretDB's next catalogue load fail, and with it `listDatabases` and every command of *every*
tenant's client, until an administrator deletes the row (e2e/test_mongodb.py reproduces
it on a second FerretDB).

The fence: a CHECK constraint `tenancy_catalogue_row` on each tenant's catalogue table, calling
`tenancy.ferretdb_catalogue_row(jsonb)`; the schema, function and table are the admin's, so a tenant
can neither drop the constraint nor change the function. The function accepts what FerretDB v1.24's
`sjson` decoder accepts for a catalogue row, narrowed to the types FerretDB writes there: an object
whose keys are exactly its schema's `$k` (each once), every value of the type its schema names
(string, int (32-bit), long, bool, null, object, array; nothing else: FerretDB writes no double
there, and a string "NaN" or a number out of range would not decode), recursively, and no schema key
sjson would not decode (`$s` only on objects, `i` only on arrays, `p` an object of `$k`'s keys); and what `Collection.unmarshal` / `Indexes.unmarshal` assert after
decoding (a row that decodes but fails there broke the catalogue load, or panicked FerretDB): `_id`
and `table` non-empty strings, `indexes` an array of objects with `key` (int orders), `name` and
`pgindex` strings, `uuid` a string and `cappedSize` / `cappedDocs` longs when present. A row FerretDB writes passes (its own collection and index creation is tested);
any other shape is refused with `check_violation` naming the constraint.
"""

from __future__ import annotations

import hashlib

__all__ = ["SCHEMA", "FUNCTION", "CONSTRAINT", "FUNCTIONS", "function_sql", "expected_functions", "add_constraint_sql"]

SCHEMA = "tenancy"
FUNCTION = "ferretdb_catalogue_row"
CONSTRAINT = "tenancy_catalogue_row"

# One body for both functions; its text is compared with pg_proc.prosrc to find drift.
_VALUE_BODY = """
DECLARE
  t text := s->>'t';
  n int;
BEGIN
  IF jsonb_typeof(s) IS DISTINCT FROM 'object' OR depth > 16
     OR EXISTS (SELECT FROM jsonb_object_keys(s) e
                WHERE e <> 't' AND NOT (e = '$s' AND t = 'object') AND NOT (e = 'i' AND t = 'array')) THEN
    RETURN false;
  END IF;
  CASE t
  WHEN 'string' THEN RETURN jsonb_typeof(v) = 'string';
  WHEN 'bool' THEN RETURN jsonb_typeof(v) = 'boolean';
  WHEN 'null' THEN RETURN jsonb_typeof(v) = 'null';
  WHEN 'int' THEN RETURN jsonb_typeof(v) = 'number' AND v::text ~ '^-?[0-9]{1,10}$'
                         AND v::text::numeric BETWEEN -2147483648 AND 2147483647;
  WHEN 'long' THEN RETURN jsonb_typeof(v) = 'number' AND v::text ~ '^-?[0-9]{1,19}$'
                          AND v::text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807;
  WHEN 'array' THEN
    IF jsonb_typeof(v) <> 'array' OR jsonb_typeof(s->'i') IS DISTINCT FROM 'array'
       OR jsonb_array_length(s->'i') <> jsonb_array_length(v) THEN
      RETURN false;
    END IF;
    FOR n IN 0 .. jsonb_array_length(v) - 1 LOOP
      IF NOT tenancy.ferretdb_catalogue_value(v->n, s->'i'->n, depth + 1) THEN
        RETURN false;
      END IF;
    END LOOP;
    RETURN true;
  WHEN 'object' THEN
    RETURN tenancy.ferretdb_catalogue_object(v, s->'$s', depth + 1);
  ELSE
    RETURN false;
  END CASE;
END
"""

_OBJECT_BODY = """
DECLARE
  keys jsonb := COALESCE(s->'$k', '[]'::jsonb);
  k text;
BEGIN
  IF jsonb_typeof(v) IS DISTINCT FROM 'object' OR jsonb_typeof(s) IS DISTINCT FROM 'object'
     OR jsonb_typeof(keys) <> 'array' OR depth > 16
     OR EXISTS (SELECT FROM jsonb_object_keys(s) e WHERE e NOT IN ('p', '$k'))
     OR jsonb_typeof(s->'p') NOT IN ('object', 'null')
     OR EXISTS (SELECT FROM jsonb_object_keys(CASE WHEN jsonb_typeof(s->'p') = 'object' THEN s->'p' ELSE '{}' END) e
                WHERE NOT keys ? e) THEN
    RETURN false;
  END IF;
  IF (SELECT count(*) FROM jsonb_array_elements(keys) e WHERE jsonb_typeof(e) <> 'string') > 0
     OR (SELECT count(DISTINCT e) FROM jsonb_array_elements_text(keys) e) <> jsonb_array_length(keys)
     OR (SELECT count(*) FROM jsonb_object_keys(v) o) <> jsonb_array_length(keys) THEN
    RETURN false;
  END IF;
  FOR k IN SELECT jsonb_array_elements_text(keys) LOOP
    IF NOT (v ? k) OR NOT tenancy.ferretdb_catalogue_value(v->k, s->'p'->k, depth + 1) THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN true;
END
"""

_ROW_BODY = """
DECLARE
  s jsonb := row_->'$s';
  ix jsonb;
  keys jsonb;
  n int;
  k text;
BEGIN
  IF NOT COALESCE(jsonb_typeof(row_) = 'object' AND jsonb_typeof(row_->'_id') = 'string' AND row_->>'_id' <> ''
                  AND jsonb_typeof(row_->'table') = 'string' AND row_->>'table' <> ''
                  AND jsonb_typeof(row_->'indexes') = 'array'
                  AND tenancy.ferretdb_catalogue_object(row_ - '$s', s, 0), false) THEN
    RETURN false;
  END IF;
  -- What FerretDB's Collection.unmarshal asserts: the types the schema gives these fields.
  IF s->'p'->'_id'->>'t' IS DISTINCT FROM 'string' OR s->'p'->'table'->>'t' IS DISTINCT FROM 'string'
     OR (row_ ? 'uuid' AND s->'p'->'uuid'->>'t' IS DISTINCT FROM 'string')
     OR (row_ ? 'cappedSize' AND s->'p'->'cappedSize'->>'t' IS DISTINCT FROM 'long')
     OR (row_ ? 'cappedDocs' AND s->'p'->'cappedDocs'->>'t' IS DISTINCT FROM 'long') THEN
    RETURN false;
  END IF;
  -- And Indexes.unmarshal: each index an object with key (int orders), name and pgindex strings.
  FOR n IN 0 .. jsonb_array_length(row_->'indexes') - 1 LOOP
    ix := s->'p'->'indexes'->'i'->n;
    IF ix->>'t' IS DISTINCT FROM 'object' OR NOT COALESCE(ix->'$s'->'$k' ?& ARRAY['key', 'name', 'pgindex'], false)
       OR ix->'$s'->'p'->'key'->>'t' IS DISTINCT FROM 'object'
       OR ix->'$s'->'p'->'name'->>'t' IS DISTINCT FROM 'string'
       OR ix->'$s'->'p'->'pgindex'->>'t' IS DISTINCT FROM 'string' THEN
      RETURN false;
    END IF;
    keys := ix->'$s'->'p'->'key'->'$s';
    FOR k IN SELECT jsonb_array_elements_text(keys->'$k') LOOP
      IF keys->'p'->k->>'t' IS DISTINCT FROM 'int' THEN
        RETURN false;
      END IF;
    END LOOP;
  END LOOP;
  RETURN true;
END
"""

FUNCTIONS = {
    "ferretdb_catalogue_value": ("v jsonb, s jsonb, depth int", _VALUE_BODY),
    "ferretdb_catalogue_object": ("v jsonb, s jsonb, depth int", _OBJECT_BODY),
    FUNCTION: ("row_ jsonb", _ROW_BODY),
}
"""name -> (arguments, body): what must exist in schema `tenancy`, owned by the admin."""


def function_sql(name: str) -> str:
    args, body = FUNCTIONS[name]
    return (f"CREATE OR REPLACE FUNCTION {SCHEMA}.{name}({args}) RETURNS boolean LANGUAGE plpgsql IMMUTABLE "
            f"SET search_path = pg_catalog AS $body${body}$body$")


schema_sql = f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}; GRANT USAGE ON SCHEMA {SCHEMA} TO PUBLIC"
"""Every role that writes a catalogue row calls the check (functions are executable by PUBLIC)."""


def expected_functions() -> list[str]:
    """`name:md5(body)` of each fence function, sorted by name: what mongodb_schema.state_sql reads back."""
    return sorted(f"{name}:{hashlib.md5(body.encode()).hexdigest()}" for name, (_args, body) in FUNCTIONS.items())


def add_constraint_sql(schema_ident: str, table_ident: str) -> str:
    """Identifiers come quoted (postgres_sql.ident). Drops a constraint of that name first (drift)."""
    return (f"ALTER TABLE {schema_ident}.{table_ident} DROP CONSTRAINT IF EXISTS {CONSTRAINT}, "
            f"ADD CONSTRAINT {CONSTRAINT} CHECK ({SCHEMA}.{FUNCTION}(_jsonb))")
