#!/usr/bin/env bash
# Builds the project's OCI images from its own files, with no container engine and no registry:
#   mmdebstrap (Debian bookworm root filesystem) -> a venv at /opt/venv with the wheels -> umoci (OCI
#   image) -> an OCI archive (tar of the OCI image layout) and its manifest digest.
# Usage: image.sh [operator] [workload]   (no argument = both)        Run as root (mmdebstrap --mode=root).
#   operator : the operator (pyproject.toml, README.md, operator/), as the Dockerfile builds it
#   workload : the tenant workload of e2e (images/workload/): reads tenant-credentials, serves /healthz
# Each image is cached under $TENANCY_CACHE/images/<hash>/ by the hash of its inputs (its source files,
# this script, the Debian suite, mirror and package list, the build epoch, its name, tag and config);
# a cached image is only linked into build/images/ (gitignored). IMAGE_REBUILD=1 builds again anyway
# (PyPI and the Debian suite move on without changing the hash; the image's .freeze.txt and
# .packages.txt record what went in).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT=$REPO/build/images
IMAGES_CACHE=$CACHE/images
BUILD_PYTHON=${IMAGE_BUILD_PYTHON:-python3}   # builds the wheel; must be the image's Python major.minor
# pip in the chroot trusts the host's CA bundle for the build only (the network here may re-sign TLS);
# the image keeps Debian's ca-certificates and nothing of the host's.
HOST_CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
NICE=(nice -n 5)

# Recipes: one function per image sets the variables below.
recipe_operator() {
  NAME=tenancy-operator
  APP_VERSION=$(awk -F'"' '/^appVersion:/ {print $2}' "$REPO/charts/tenancy-operator/Chart.yaml")
  # What the chart runs by default: values.yaml image.repository, tag = the chart's appVersion.
  REF=ghcr.io/tenancy-dev/tenancy-operator:$APP_VERSION
  SRC=(pyproject.toml README.md operator)      # the Dockerfile's COPY lines
  # libstdc++6: numpy's and scikit-learn's wheels need it (python:slim has it through apt).
  PACKAGES=(python3 libstdc++6 postgresql-client-15 ca-certificates netbase tzdata)
  ENTRYPOINT=tenancy-operator
  PORTS=(8080/tcp 9090/tcp)
  ENVS=(TENANCY_LIVENESS=http://0.0.0.0:8080/healthz)
  TITLE=tenancy-operator
  DESCRIPTION="Kubernetes operator: one Tenant in, an isolated slice of every backing service out"
  # The MongoDB and search adapters load on first use (backends/lazy_modules.py): imported here by name.
  CHECK="import tenancy_operator.handlers,tenancy_operator.backends.mongodb,tenancy_operator.backends.search,tenancy_operator.backends.mongodb_export,tenancy_operator.backends.search_export"
}

recipe_workload() {
  NAME=tenant-workload
  APP_VERSION=$(awk -F'"' '/^version *=/ {print $2; exit}' "$REPO/images/workload/pyproject.toml")
  REF=ghcr.io/tenancy-dev/tenant-workload:$APP_VERSION
  SRC=(images/workload)
  PACKAGES=(python3 ca-certificates netbase)
  ENTRYPOINT=tenant-workload
  PORTS=(8080/tcp)
  ENVS=(WORKLOAD_PORT=8080)
  TITLE=tenant-workload
  DESCRIPTION="Tenancy Operator e2e workload: checks the tenant's backends with tenant-credentials, serves /healthz"
  CHECK="import tenant_workload.app, psycopg, redis"
}

# Shared by both images.
SUITE=${IMAGE_DEBIAN_SUITE}
MIRROR=${IMAGE_DEBIAN_MIRROR}
EPOCH=${IMAGE_SOURCE_DATE_EPOCH}
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
UID_GID=65532
BASE_ENV=(PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
          PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1)
# Not installed: manuals, docs (copyright files kept) and translations.
DPKG_OPTS=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
           --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
           --dpkgopt='path-exclude=/usr/share/info/*')

# The inputs' hash: every source file (path and content), this script, lib.sh's versions and the recipe.
input_hash() {
  {
    (cd "$REPO" && find "${SRC[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*' \
       ! -path '*/build/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum <"${BASH_SOURCE[0]}"   # content only: the path it was run by must not change the hash
    printf '%s\n' "$NAME" "$REF" "$SUITE" "$MIRROR" "$EPOCH" "${PACKAGES[*]}" "$ENTRYPOINT" "${PORTS[*]}" \
      "${ENVS[*]}" "${BASE_ENV[*]}" "${DPKG_OPTS[*]}" "$TITLE" "$DESCRIPTION" "$CHECK" "$UID_GID"
    "$BUILD_PYTHON" -c 'import sys; print(sys.version_info[:2])'
  } | sha256sum | cut -c1-16
}

# link CACHED_DIR: build/images/NAME.* point at the cached files (hard links, else copies).
link_out() {
  local dir=$1 f
  mkdir -p "$OUT"
  for f in "$dir/$NAME".*; do
    ln -f "$f" "$OUT/$(basename "$f")" 2>/dev/null || cp -f "$f" "$OUT/$(basename "$f")"
  done
}

build_image() {
  local hash dir work start
  hash=$(input_hash)
  dir=$IMAGES_CACHE/$NAME-$hash
  if [[ -f $dir/done && ${IMAGE_REBUILD:-0} != 1 ]]; then
    link_out "$dir"
    log "$NAME: cached ($hash) $(cat "$dir/$NAME.digest") -> $OUT/$NAME.oci.tar"
    return
  fi
  [[ $(id -u) -eq 0 ]] || die "building an image needs root (mmdebstrap --mode=root, umoci unpack)"
  for tool in mmdebstrap umoci; do
    command -v $tool >/dev/null || die "$tool is missing: apt-get install mmdebstrap umoci"
  done
  start=$SECONDS
  # Kept between builds: the downloaded Debian packages (.deb). PyPI downloads are not kept (a pip
  # cache copied in and out with sync-in/sync-out stayed empty; not pursued).
  mkdir -p "$IMAGES_CACHE/debs"
  rm -rf "$IMAGES_CACHE/.work-$NAME-"*   # a failed build's (kept for its log until the next one)
  work=$(mktemp -d "$IMAGES_CACHE/.work-$NAME-XXXXXX")
  trap "rm -rf '$work'" RETURN
  log "$NAME: building ($hash; log in $work/build.log, kept as $dir/$NAME.build.log)"

  # 1. The project's wheel, built from a copy of the sources (the checkout gets no build/ or egg-info),
  #    and pip's. The dependencies are resolved in the image by its own python3 (3.11.2 in bookworm:
  #    markers such as redis's `python_full_version < "3.11.3"` must see that one, not the host's).
  mkdir -p "$work/src" "$work/wheels"
  (cd "$REPO" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' "${SRC[@]}") |
    tar -xf - -C "$work/src"
  local srcdir=$work/src
  [[ -f $srcdir/pyproject.toml ]] || srcdir=$work/src/${SRC[0]}
  local major_minor
  major_minor=$("$BUILD_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  "${NICE[@]}" "$BUILD_PYTHON" -m pip wheel -q --no-deps --disable-pip-version-check -w "$work/wheels" "$srcdir" pip \
    >>"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; die "$NAME: pip wheel failed"; }
  log "$NAME: $(cd "$work/wheels" && ls) in $((SECONDS - start))s"

  # 2. The root filesystem. The venv is made by the image's own python3 (Debian's; no ensurepip in
  #    bookworm's python3 without python3-venv, so pip runs from its wheel); the dependencies come from
  #    PyPI (network from the chroot, with a clean environment).
  local pip_whl hook hook2
  pip_whl=$(cd "$work/wheels" && ls pip-*.whl)
  hook="set -e; chroot \"\$1\" /usr/bin/python3 -c 'import sys; assert \"%d.%d\" % sys.version_info[:2] == \"$major_minor\", sys.version'
chroot \"\$1\" /usr/bin/python3 -m venv --without-pip /opt/venv
chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 SOURCE_DATE_EPOCH=$EPOCH PIP_NO_CACHE_DIR=1 PIP_CERT=/tmp/host-ca.pem /opt/venv/bin/python /tmp/wheels/$pip_whl/pip install -q --disable-pip-version-check --find-links /tmp/wheels pip $NAME"
  hook2="set -e; chroot \"\$1\" /opt/venv/bin/python -c '$CHECK'
chroot \"\$1\" /opt/venv/bin/pip freeze --all > \"\$1/tmp/freeze.txt\"
rm -rf \"\$1/tmp/wheels\" \"\$1/tmp/host-ca.pem\"
echo 'tenancy:x:$UID_GID:' >> \"\$1/etc/group\"
echo 'tenancy:x:$UID_GID:$UID_GID::/nonexistent:/usr/sbin/nologin' >> \"\$1/etc/passwd\"
grep -q '^tenancy:' \"\$1/etc/shadow\" 2>/dev/null || echo 'tenancy:!:$((EPOCH / 86400))::::::' >> \"\$1/etc/shadow\"
chroot \"\$1\" dpkg-query -W -f '\${Package} \${Version}\n' > \"\$1/tmp/packages.txt\""
  local mode=${IMAGE_MMDEBSTRAP_MODE:-root}
  # --variant=essential: Essential:yes packages (dpkg, coreutils, bash, base-passwd ...) and the list;
  # no apt in the image. mmdebstrap's cleanup leaves no apt lists or caches.
  if ! SOURCE_DATE_EPOCH=$EPOCH "${NICE[@]}" mmdebstrap --mode="$mode" --variant=essential \
       --include="$(IFS=,; echo "${PACKAGES[*]}")" "${DPKG_OPTS[@]}" \
       --skip=download/empty --skip=essential/unlink \
       --setup-hook='mkdir -p "$1"/var/cache/apt/archives' --setup-hook="sync-in '$IMAGES_CACHE/debs' /var/cache/apt/archives" \
       --customize-hook="sync-out /var/cache/apt/archives '$IMAGES_CACHE/debs'" \
       --customize-hook="copy-in '$work/wheels' /tmp" \
       --customize-hook="upload '$HOST_CA' /tmp/host-ca.pem" --customize-hook="$hook" \
       --customize-hook="$hook2" --customize-hook="copy-out /tmp/freeze.txt /tmp/packages.txt '$work'" \
       --customize-hook='rm -rf "$1/tmp/freeze.txt" "$1/tmp/packages.txt"; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/cache/ldconfig/aux-cache' \
       "$SUITE" "$work/rootfs" "$MIRROR" >>"$work/build.log" 2>&1; then
    tail -30 "$work/build.log" >&2
    die "$NAME: mmdebstrap --mode=$mode failed (full log: $work/build.log; try IMAGE_MMDEBSTRAP_MODE=unshare)"
  fi
  # Files pip wrote carry the build's time: clamp every mtime to the epoch (reproducible layers).
  find "$work/rootfs" -newermt "@$EPOCH" -print0 | xargs -0r touch -h -d "@$EPOCH"
  log "$NAME: root filesystem ($(du -sh "$work/rootfs" | cut -f1)) in $((SECONDS - start))s (mmdebstrap --mode=$mode)"

  # 3. The OCI image: an empty image, its config, then the root filesystem as its one layer.
  local tag=${REF##*:} oci=$work/oci cfg=() e p
  umoci init --layout "$oci"
  umoci new --image "$oci:$tag"
  for e in "${BASE_ENV[@]}" "${ENVS[@]}"; do cfg+=(--config.env "$e"); done
  for p in "${PORTS[@]}"; do cfg+=(--config.exposedports "$p"); done
  umoci config --image "$oci:$tag" --no-history --created "$CREATED" --os linux --architecture amd64 \
    --config.user "$UID_GID:$UID_GID" --config.entrypoint "$ENTRYPOINT" --config.workingdir / "${cfg[@]}" \
    --config.label "org.opencontainers.image.title=$TITLE" \
    --config.label "org.opencontainers.image.description=$DESCRIPTION" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0" \
    --config.label "org.opencontainers.image.source=https://github.com/tenancy-dev/tenancy-operator" \
    --config.label "org.opencontainers.image.version=$APP_VERSION"
  umoci unpack --image "$oci:$tag" "$work/bundle" >>"$work/build.log"
  rm -rf "$work/bundle/rootfs"
  mv "$work/rootfs" "$work/bundle/rootfs"
  "${NICE[@]}" umoci repack --image "$oci:$tag" --history.created "$CREATED" \
    --history.created_by "platform/image.sh: mmdebstrap $SUITE (${PACKAGES[*]}) + /opt/venv ($NAME)" "$work/bundle"
  umoci gc --layout "$oci"
  # containerd's `ctr images import` names the image from io.containerd.image.name (the full reference);
  # org.opencontainers.image.ref.name keeps the tag, as the OCI layout spec has it.
  "$BUILD_PYTHON" - "$oci/index.json" "$REF" <<'EOF'
import json, sys
path, ref = sys.argv[1:]
index = json.load(open(path))
for m in index["manifests"]:
    m.setdefault("annotations", {})["io.containerd.image.name"] = ref
json.dump(index, open(path, "w"), separators=(",", ":"))
EOF
  local digest
  digest=$("$BUILD_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$oci/index.json")

  # 4. The archive, beside its digest, reference and the records of what went in.
  mkdir -p "$work/out"
  find "$oci" -print0 | xargs -0 touch -h -d "@$EPOCH"
  tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner -C "$oci" -cf "$work/out/$NAME.oci.tar" .
  echo "$digest" >"$work/out/$NAME.digest"
  echo "$REF" >"$work/out/$NAME.ref"
  mv "$work/freeze.txt" "$work/out/$NAME.freeze.txt"
  mv "$work/packages.txt" "$work/out/$NAME.packages.txt"
  cp "$work/build.log" "$work/out/$NAME.build.log"
  rm -rf "$dir"
  mv "$work/out" "$dir"
  touch "$dir/done"
  link_out "$dir"
  # Keep the 4 newest builds of this image (other checkouts share the cache; their build/ holds hard links).
  ls -dt "$IMAGES_CACHE/$NAME"-*/ | tail -n +5 | xargs -r rm -rf
  log "$NAME: built in $((SECONDS - start))s: $REF $digest, $(du -h "$dir/$NAME.oci.tar" | cut -f1) -> $OUT/$NAME.oci.tar"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(operator workload)
mkdir -p "$IMAGES_CACHE"
exec 8>"$IMAGES_CACHE/.lock"
flock -n 8 || { log "another image.sh holds $IMAGES_CACHE/.lock; waiting"; flock 8; }
for n in "${names[@]}"; do
  declare -F "recipe_$n" >/dev/null || die "no image named $n (operator, workload)"
  "recipe_$n"
  build_image
done
