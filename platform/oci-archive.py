#!/usr/bin/env python3
"""Writes a one-layer OCI image archive (an OCI layout in a tar) from files on this machine.

No registry, no daemon: the layer is a tar of the given files, the config and manifest are JSON, and
the archive carries index.json with the image's name, so `ctr -n k8s.io images import` names it.
Everything is deterministic (mtime 0, sorted, uid/gid 0), so the same inputs give the same digest.

Usage: oci-archive.py OUT.tar NAME [--user UID] [--cmd JSON] [--dir PATH]...
                      [--file SRC:DEST[:MODE]]... [--link TARGET:DEST]...
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile


def _info(name, kind, mode, size=0, linkname=""):
    ti = tarfile.TarInfo(name if name == "./" else name.lstrip("/"))
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, linkname
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
    return ti


def layer(dirs, files, links):
    buf = io.BytesIO()
    entries = []
    parents = set()
    for dest in [d for d in dirs] + [f[1] for f in files] + [lk[1] for lk in links]:
        p = os.path.dirname(dest.rstrip("/"))
        while p not in ("", "/"):
            parents.add(p)
            p = os.path.dirname(p)
    # The root itself, with its mode, as image builders write it.
    entries.append(("", _info("./", tarfile.DIRTYPE, 0o755), None))
    for d in sorted(parents | set(d.rstrip("/") for d in dirs)):
        mode = 0o1777 if d == "/tmp" else 0o755
        entries.append((d, _info(d, tarfile.DIRTYPE, mode), None))
    for src, dest, mode in files:
        with open(src, "rb") as fh:
            data = fh.read()
        entries.append((dest, _info(dest, tarfile.REGTYPE, mode, len(data)), data))
    for target, dest in links:
        entries.append((dest, _info(dest, tarfile.SYMTYPE, 0o777, linkname=target), None))
    entries.sort(key=lambda e: e[0])
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for _, ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name", help="full reference, e.g. localhost/tenancy/pause:3.10.1")
    ap.add_argument("--user", default="")
    ap.add_argument("--cmd", default="[]", help="JSON list")
    ap.add_argument("--entrypoint", default="[]", help="JSON list")
    ap.add_argument("--dir", action="append", default=[])
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--link", action="append", default=[])
    a = ap.parse_args()
    files = []
    for f in a.file:
        parts = f.split(":")
        files.append((parts[0], parts[1], int(parts[2], 8) if len(parts) > 2 else 0o755))
    links = [tuple(lk.split(":", 1)) for lk in a.link]

    raw = layer(a.dir, files, links)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    gz = gzip.compress(raw, mtime=0)
    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return "sha256:" + d

    layer_digest = blob(gz)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": a.user,
            "Entrypoint": json.loads(a.entrypoint) or None,
            "Cmd": json.loads(a.cmd) or None,
            "Env": ["PATH=/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "platform/oci-archive.py"}],
    }
    config["config"] = {k: v for k, v in config["config"].items() if v}
    cfg = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": len(gz)}],
    }
    man = json.dumps(manifest, sort_keys=True).encode()
    man_digest = blob(man)
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest,
            "size": len(man),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": a.name,
                "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1],
            },
        }],
    }
    out_entries = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index, sort_keys=True).encode()),
    ] + [(f"blobs/sha256/{d}", data) for d, data in sorted(blobs.items())]
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o755))
        for name, data in out_entries:
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    os.replace(tmp, a.out)
    print(man_digest)


if __name__ == "__main__":
    main()
