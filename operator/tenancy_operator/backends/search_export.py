"""Search part of an archive: every index `t-<name>_*` with its mappings, settings and documents.

OpenSearch only (through search.py's admin client); an Elasticsearch Backend refuses to archive,
saying so. One JSON line per index, `{"index": suffix, "mappings": {...}, "settings": {...}}` (the
suffix after the tenant's prefix; settings are the ones a person chooses, see _KEPT), then one line
per document, `{"i": suffix, "id": _id, "s": _source, "r": _routing or null}`, read with a scroll.
Restore makes each index under the target tenant's prefix (an archived index already there is
deleted first: the caller refuses a tenant holding data unless overwrite), bulk-loads its documents
and refreshes it. The name is the target's prefix and the archived suffix, which goes into the admin's
request paths: before the first write `check` refuses the part (archive_checks.Unsafe) unless every
suffix is on an allow-list (lower-case letters, digits, '.', '_', '+', '-': no '/', ',', '*', '?',
'#', '%' or '..' could reach another index or path), every setting is one an export keeps (`_KEPT`),
and every document belongs to an index declared above it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..api import names
from . import search
from .archive_checks import Unsafe
from .base import BackendRefused, Target

__all__ = ["dump", "check", "restore", "holds_data", "server_version"]

_BATCH = 500
_KEPT = ("number_of_shards", "number_of_replicas", "refresh_interval", "max_result_window", "analysis", "mapping",
         "sort", "codec")
"""index.* settings carried over; the rest (uuid, creation date, version, routing) belong to the old index."""
_SUFFIX = re.compile(r"^[a-z0-9._+-]{1,190}$")
"""What may follow `t-<name>_` in a restored index's name (prefix and suffix stay under 255 bytes)."""


def _refuse_elastic(target: Target) -> None:
    if search.elastic(target):
        raise BackendRefused(f"search backend {target.name}: archiving an Elasticsearch Backend's indices is not "
                             "built (OpenSearch only); set the LifecyclePolicy's reclaim to Retain or Delete")


async def server_version(target: Target) -> str:
    _refuse_elastic(target)
    info = await search._call(target, "GET", "/")
    return str((info or {}).get("version", {}).get("number", ""))


async def _indices(target: Target, tenant: str) -> list[str]:
    prefix = names.search_prefix(tenant)
    found = await search._call(target, "GET", f"/{prefix}*/_settings?expand_wildcards=all", missing_ok=True) or {}
    return sorted(i for i in found if i.startswith(prefix))


async def dump(target: Target, tenant: str, out: Path) -> dict[str, int]:
    """Writes the tenant's indices to `out`; returns `{indices, documents}`."""
    _refuse_elastic(target)
    prefix, documents = names.search_prefix(tenant), 0
    indices = await _indices(target, tenant)
    with out.open("w") as f:
        for index in indices:
            suffix = index[len(prefix):]
            mapping = (await search._call(target, "GET", f"/{index}/_mapping"))[index]["mappings"]
            settings = (await search._call(target, "GET", f"/{index}/_settings"))[index]["settings"]["index"]
            f.write(json.dumps({"index": suffix, "mappings": mapping,
                                "settings": {k: v for k, v in settings.items() if k in _KEPT}}) + "\n")
            page = await search._call(target, "POST", f"/{index}/_search?scroll=1m",
                                      {"size": _BATCH, "sort": ["_doc"], "query": {"match_all": {}}})
            scroll_ids = set()
            while page["hits"]["hits"]:
                scroll_ids.add(page["_scroll_id"])
                for hit in page["hits"]["hits"]:
                    f.write(json.dumps({"i": suffix, "id": hit["_id"], "s": hit["_source"],
                                        "r": hit.get("_routing")}) + "\n")
                    documents += 1
                page = await search._call(target, "POST", "/_search/scroll",
                                          {"scroll": "1m", "scroll_id": page["_scroll_id"]})
            scroll_ids.add(page.get("_scroll_id"))
            await search._call(target, "DELETE", "/_search/scroll", {"scroll_id": sorted(filter(None, scroll_ids))},
                               missing_ok=True)
    return {"indices": len(indices), "documents": documents}


async def holds_data(target: Target, tenant: str) -> bool:
    return bool(await _indices(target, tenant))


def _line(raw: str, number: int, declared: set[str]) -> dict[str, Any]:
    """One line of the part; Unsafe unless it is an index with a safe suffix and kept settings, or a
    document of an index declared above it (`declared` gets each index's suffix)."""
    item = json.loads(raw)
    if isinstance(item, dict) and "index" in item:
        suffix, settings = item.get("index"), item.get("settings")
        if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
            raise Unsafe("search", f"index suffix {suffix!r} is not allowed (only a-z 0-9 . _ + -, 1 to 190)")
        if not isinstance(settings, dict) or not isinstance(item.get("mappings"), dict):
            raise Unsafe("search", f"index {suffix}: settings and mappings must be JSON objects")
        extra = sorted(set(settings) - set(_KEPT))
        if extra:
            raise Unsafe("search", f"index {suffix}: settings {', '.join(extra)} are not ones an archive keeps")
        declared.add(suffix)
        return item
    if isinstance(item, dict) and item.get("i") in declared and isinstance(item.get("s"), dict):
        return item
    raise Unsafe("search", f"line {number} is neither an index nor a document of an index declared above it")


def check(lines: Path) -> int:
    """How many indices the part holds, once every line is safe to load; writes nothing."""
    declared: set[str] = set()
    with lines.open() as f:
        for number, raw in enumerate(f, 1):
            _line(raw, number, declared)
    return len(declared)


async def restore(target: Target, tenant: str, lines: Path) -> int:
    """Makes and loads every index of the archive under the tenant's prefix; returns the documents."""
    _refuse_elastic(target)
    prefix, count, batch = names.search_prefix(tenant), 0, []
    existing = set(await _indices(target, tenant))
    declared: set[str] = set()

    async def flush() -> None:
        if batch:
            answer = await search._call(target, "POST", "/_bulk", "".join(batch))
            if answer.get("errors"):
                failed = next(i for i in answer["items"] if next(iter(i.values())).get("error"))
                raise BackendRefused(f"search backend {target.name}: bulk load refused: {str(failed)[:300]}")
            batch.clear()

    loaded: list[str] = []
    with lines.open() as f:
        for number, line in enumerate(f, 1):
            item = _line(line, number, declared)
            if "index" in item:
                await flush()
                index = prefix + item["index"]
                if index in existing:
                    await search._call(target, "DELETE", f"/{index}")
                await search._call(target, "PUT", f"/{index}", {"settings": {"index": item["settings"]},
                                                                "mappings": item["mappings"]})
                loaded.append(index)
                continue
            action: dict[str, Any] = {"_index": prefix + item["i"], "_id": item["id"]}
            if item.get("r"):
                action["routing"] = item["r"]
            batch.append(json.dumps({"index": action}) + "\n" + json.dumps(item["s"]) + "\n")
            count += 1
            if len(batch) >= _BATCH:
                await flush()
    await flush()
    for index in loaded:
        await search._call(target, "POST", f"/{index}/_refresh")
    return count
