import json
import logging

from tenancy_operator.observability import logs


def _record(msg, *args, **extra):
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_json_line_has_every_field():
    with logs.reconcile_scope() as rid:
        line = logs.JsonFormatter().format(_record("create %s", "Namespace tenant-acme",
                                                   k8s_ref={"kind": "Tenant", "name": "acme"}))
    entry = json.loads(line)
    assert list(entry)[:7] == list(logs.FIELDS)
    assert entry["tenant"] == "acme" and entry["backend"] is None and entry["reconcile_id"] == rid
    assert entry["level"] == "INFO" and entry["logger"] == "kopf.objects" and entry["message"] == "create Namespace tenant-acme"
    assert entry["time"].endswith("Z") and "\n" not in line


def test_backend_and_explicit_extra():
    entry = json.loads(logs.JsonFormatter().format(_record("probe", k8s_ref={"kind": "Backend", "name": "pg-main"})))
    assert entry["backend"] == "pg-main" and entry["tenant"] is None and entry["reconcile_id"] is None
    entry = json.loads(logs.JsonFormatter().format(_record("x", tenant="globex", backend="redis-main")))
    assert (entry["tenant"], entry["backend"]) == ("globex", "redis-main")


def test_a_traceback_stays_on_one_line():
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: bad" in json.loads(line)["error"]


def test_text_names_the_subject():
    line = logs.TextFormatter().format(_record("hello", k8s_ref={"kind": "Tenant", "name": "acme"}))
    assert "[acme] kopf.objects: hello" in line


def test_configure_switches_every_root_handler(monkeypatch):
    root = logging.getLogger()
    saved = [(h, h.formatter) for h in root.handlers]
    try:
        monkeypatch.setenv(logs.FORMAT_ENV, "json")
        assert logs.configure() == "json"
        assert all(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
        assert logs.configure("text") == "text"
        import pytest

        with pytest.raises(ValueError):
            logs.configure("xml")
    finally:
        for h, f in saved:
            h.setFormatter(f)
