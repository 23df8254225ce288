"""The retention purge goes on past a manifest it cannot date (handlers/archive_purge.py)."""

from __future__ import annotations

import json

from tenancy_operator.handlers import archive_purge


async def test_a_manifest_without_a_readable_retention_is_left_and_the_pass_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    for archive_id, manifest in (("odd-1", {"tenant": "odd", "createdAt": "2020-01-01T00:00:00Z", "retention": "forever"}),
                                 ("odd-2", {"tenant": "odd", "retention": "1h"}),  # no createdAt
                                 ("kept-1", {"tenant": "kept", "createdAt": "2999-01-01T00:00:00Z", "retention": "1h"})):
        (tmp_path / archive_id).mkdir()
        (tmp_path / archive_id / "manifest.json").write_text(json.dumps(manifest))
    assert await archive_purge.purge_pass(now=1_900_000_000) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept-1", "odd-1", "odd-2"]
