"""The images `make image` builds, proven by running them: each OCI archive is unpacked with umoci into a
runtime bundle and its programs run with runc, as the chart runs the operator (user 65532 from the
image's config, read-only root filesystem, /tmp a tmpfs, no capabilities, no new privileges).

Needs root, umoci and runc (Debian packages); not in tests/unit (`make unit` needs neither). `make test`
runs it (about 1 min with the image cached; platform/image.sh builds what is missing, about 5 min),
`make image-test` runs it alone. Nothing here is skipped: a missing tool is a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "images"


def _run(*cmd: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def built() -> dict[str, float]:
    assert os.geteuid() == 0, "the image tests need root (umoci unpack, runc)"
    for tool in ("umoci", "runc", "mmdebstrap"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install mmdebstrap umoci runc"
    start = time.monotonic()
    first = _run("bash", str(REPO / "platform" / "image.sh"), "operator", "workload", timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    # The second call finds both in the cache and only links them.
    again_start = time.monotonic()
    again = _run("bash", str(REPO / "platform" / "image.sh"), "operator", "workload")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count(": cached (") == 2, again.stderr
    return {"first": again_start - start, "again": time.monotonic() - again_start}


def _unpack(name: str, tmp: Path) -> tuple[Path, dict, dict]:
    """The archive unpacked into an OCI layout and a runtime bundle; (bundle, manifest, image config)."""
    layout, bundle = tmp / f"{name}-oci", tmp / f"{name}-bundle"
    layout.mkdir()
    with tarfile.open(OUT / f"{name}.oci.tar") as tar:
        tar.extractall(layout, filter="tar")
    index = json.loads((layout / "index.json").read_text())
    digest = (OUT / f"{name}.digest").read_text().strip()
    [entry] = index["manifests"]
    assert entry["digest"] == digest
    assert entry["annotations"]["io.containerd.image.name"] == (OUT / f"{name}.ref").read_text().strip()
    raw = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    manifest = json.loads(raw)
    config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    tag = entry["annotations"]["org.opencontainers.image.ref.name"]
    unpack = _run("umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle))
    assert unpack.returncode == 0, unpack.stderr
    return bundle, manifest, config


@pytest.fixture(scope="module")
def operator_image(built, tmp_path_factory) -> tuple[Path, dict, dict]:
    return _unpack("tenancy-operator", tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="module")
def workload_image(built, tmp_path_factory) -> tuple[Path, dict, dict]:
    return _unpack("tenant-workload", tmp_path_factory.mktemp("workload"))


def _runc(bundle: Path, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `args` in the bundle as the chart would: the image's user, read-only root, /tmp tmpfs, no caps."""
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = args
    spec["process"]["terminal"] = False
    spec["process"]["noNewPrivileges"] = True
    spec["process"]["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    spec["root"]["readonly"] = True
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/tmp"] + [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}]
    (bundle / "config.json").write_text(json.dumps(spec))
    cid = f"tenancy-image-test-{uuid.uuid4().hex[:8]}"
    try:
        return _run("runc", "run", "--bundle", str(bundle), cid, timeout=timeout)
    finally:
        _run("runc", "delete", "--force", cid)


def _dockerfile() -> dict[str, object]:
    """The final stage's USER, ENV, EXPOSE, ENTRYPOINT and LABELs of the repository's Dockerfile."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM "):]
    env = dict(re.findall(r"(\w+)=(\S+)", re.search(r"\nENV (.*)", final).group(1)))
    labels = dict(re.findall(r'([\w.]+)="([^"]*)"', re.search(r"\nLABEL (.*)", final).group(1)))
    return {
        "user": re.search(r"\nUSER (\S+)", final).group(1),
        "env": env,
        "ports": {f"{p}/tcp" for p in re.search(r"\nEXPOSE (.*)", final).group(1).split()},
        "entrypoint": json.loads(re.search(r"\nENTRYPOINT (.*)", final).group(1)),
        "labels": labels,
    }


def test_operator_image_config_matches_the_dockerfile(operator_image):
    bundle, manifest, config = operator_image
    docker = _dockerfile()
    cfg = config["config"]
    assert cfg["User"] == docker["user"] == "65532:65532"
    assert cfg["Entrypoint"] == docker["entrypoint"] == ["tenancy-operator"]
    assert not cfg.get("Cmd")
    assert set(cfg["ExposedPorts"]) == docker["ports"] == {"8080/tcp", "9090/tcp"}
    env = dict(e.split("=", 1) for e in cfg["Env"])
    for key, value in docker["env"].items():
        want = value.replace("$PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        assert env[key] == want, key
    for key, value in docker["labels"].items():
        assert cfg["Labels"][key] == value, key
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    assert len(manifest["layers"]) == 1
    rootfs = bundle / "rootfs"
    # No apt lists or caches, nothing of the build (the host's CA bundle, pip's cache, the wheels).
    assert not [p for p in (rootfs / "var/lib/apt/lists").rglob("*") if p.is_file() and p.name != "lock"]
    assert not [p for p in (rootfs / "var/cache/apt").rglob("*") if p.is_file()]
    assert not list((rootfs / "tmp").iterdir())
    assert "tenancy:x:65532:65532:" in (rootfs / "etc/passwd").read_text()


def test_operator_image_runs_as_65532_read_only(operator_image):
    bundle, _, _ = operator_image
    help_ = _runc(bundle, ["tenancy-operator", "--help"])
    assert help_.returncode == 0, help_.stderr
    assert "usage: tenancy-operator" in help_.stdout
    who = _runc(bundle, ["python", "-c", "import os, sys, tenancy_operator.handlers, tenancy_operator.cli.main; "
                         "print(os.getuid(), os.getgid(), sys.executable, '%d.%d' % sys.version_info[:2])"])
    assert who.returncode == 0, who.stderr
    assert who.stdout.split() == ["65532", "65532", "/opt/venv/bin/python", "3.11"]
    pg = _runc(bundle, ["sh", "-c", "pg_dump --version && /usr/lib/postgresql/15/bin/pg_restore --version"])
    assert pg.returncode == 0, pg.stderr
    assert re.match(r"pg_dump \(PostgreSQL\) 15\.\d+", pg.stdout), pg.stdout
    assert "pg_restore (PostgreSQL) 15." in pg.stdout
    # Read-only root filesystem; /tmp writable (the chart's emptyDir).
    ro = _runc(bundle, ["sh", "-c", "touch /opt/venv/x 2>/dev/null && echo wrote || echo refused; touch /tmp/x && echo tmp-ok"])
    assert ro.stdout.split() == ["refused", "tmp-ok"], ro.stdout + ro.stderr
    # The recorded freeze is what the image holds.
    freeze = _runc(bundle, ["pip", "freeze", "--all"])
    assert freeze.returncode == 0, freeze.stderr
    assert freeze.stdout.split() == (OUT / "tenancy-operator.freeze.txt").read_text().split()


def test_workload_image_serves_healthz(workload_image):
    bundle, _, config = workload_image
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["tenant-workload"]
    # The entrypoint serves; with no tenant-credentials in its environment /healthz is 503 (nothing to
    # check is not healthy) and /livez 200. Asked from inside the container (its own network namespace).
    probe = ("import json, time, urllib.request, urllib.error\n"
             "for _ in range(50):\n"
             "    try:\n"
             "        urllib.request.urlopen('http://127.0.0.1:8080/livez', timeout=1); break\n"
             "    except OSError: time.sleep(0.2)\n"
             "try:\n"
             "    urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=5)\n"
             "except urllib.error.HTTPError as e:\n"
             "    print(e.code, json.load(e)['status'])\n")
    # The server's own log lines go to stderr: on stdout they interleaved with the probe's answer
    # ("503 none503\n fail" failed CI once).
    out = _runc(bundle, ["sh", "-c", f"tenant-workload >&2 & pid=$!; python3 -c \"{probe}\"; kill $pid"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "503 fail", out.stdout + out.stderr
    versions = _runc(bundle, ["python", "-c", "import os, psycopg, redis; print(os.getuid(), psycopg.pq.version())"])
    assert versions.returncode == 0, versions.stderr
    assert versions.stdout.split()[0] == "65532"


def test_cached_build_is_reused(built, capsys):
    # The fixture asserts the second call found both images in the cache (": cached (" twice); the
    # times are printed, never asserted (a loaded machine is no failure).
    with capsys.disabled():
        print(f"\nimage.sh first call {built['first']:.1f}s, cached call {built['again']:.1f}s")
