"""Reading the API server's audit log: who wrote what, from a given point on.

The API server rotates its log at 200 MB (`--audit-log-maxsize`, one backup kept: platform/up.sh); a
long run or a scale bench passes that. A mark is therefore a file (its inode) and an offset, and
reading from a mark follows the rotation into the newer file. A mark whose file is gone (rotated twice
since) fails loudly instead of counting nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .kube import STATE

LOG = STATE / "logs" / "audit.log"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True)
class Mark:
    """A point in the audit log: the inode of the file that held it and the byte offset there."""

    inode: int
    offset: int


def mark() -> Mark:
    """The current end of the audit log; pass it to `writes` (or `lines`) to read what came after."""
    try:
        st = LOG.stat()
    except FileNotFoundError:
        return Mark(0, 0)
    return Mark(st.st_ino, st.st_size)


def _files() -> list[Path]:
    """The rotated backups (oldest first: their names carry the rotation time) and then the live log."""
    backups = sorted(p for p in LOG.parent.glob(f"{LOG.stem}-*{LOG.suffix}"))
    return backups + ([LOG] if LOG.exists() else [])


def lines(since: Mark, until: Mark | None = None) -> Iterator[bytes]:
    """The raw log lines (no line ends) after `since` (and before `until`), across a rotation in between.

    Raises AssertionError when the file `since` was taken in no longer exists (two rotations since):
    a count from what is left would be short."""
    files = _files()
    inodes = [os.stat(p).st_ino for p in files]
    if since.inode == 0:  # no log when the mark was taken: everything there is now came after
        start = 0
    elif since.inode in inodes:
        start = inodes.index(since.inode)
    else:
        raise AssertionError(f"the audit log rotated more than once since the mark (file {since.inode} is gone)")
    for path, inode in zip(files[start:], inodes[start:], strict=True):
        with path.open("rb") as f:
            if inode == since.inode:
                f.seek(since.offset)
            if until is not None and inode == until.inode:
                yield from f.read(max(until.offset - f.tell(), 0)).splitlines()
                return
            for raw in f:
                yield raw.rstrip(b"\n")


def entries(since: Mark, until: Mark | None = None) -> Iterator[dict]:
    """The complete requests (stage ResponseComplete) logged after `since` (and before `until`), decoded."""
    for raw in lines(since, until):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if entry.get("stage") in (None, "ResponseComplete"):
            yield entry


def writes(since: Mark, username: str, exclude_resources: frozenset[str] = frozenset({"leases"}),
           namespace: str | None = None) -> Counter:
    """Write requests by `username` after `since` (in `namespace` if given), counted by (verb, resource, name)."""
    counts: Counter = Counter()
    for entry in entries(since):
        if entry.get("user", {}).get("username") != username or entry.get("verb") not in WRITE_VERBS:
            continue
        resource = entry.get("objectRef", {}).get("resource", "")
        if resource in exclude_resources:
            continue
        if namespace is not None and entry.get("objectRef", {}).get("namespace") != namespace:
            continue
        counts[(entry["verb"], resource, entry.get("objectRef", {}).get("name", ""))] += 1
    return counts


def by_field_manager(since: Mark, manager: str) -> Counter:
    """Write requests after `since` that named field manager `manager`, counted by
    (verb, resource, subresource, name) (the manager is a query parameter of the logged requestURI)."""
    counts: Counter = Counter()
    for entry in entries(since):
        if entry.get("verb") not in WRITE_VERBS:
            continue
        if not re.search(rf"[?&]fieldManager={re.escape(manager)}(&|$)", entry.get("requestURI", "")):
            continue
        ref = entry.get("objectRef", {})
        counts[(entry["verb"], ref.get("resource", ""), ref.get("subresource", ""), ref.get("name", ""))] += 1
    return counts
