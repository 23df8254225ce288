#!/usr/bin/env bash
# Builds FerretDB (v1) into the per-version cache, like build-go-tool.sh, with one extra step:
# FerretDB embeds build/version/version.txt, which its release process generates and the published
# module does not contain, so a plain build panics at start ("Invalid build/version/version.txt").
# The wrapper module vendors its dependencies and writes that file into the vendored copy.
# Usage: build-ferretdb.sh VERSION   Prints the path of the binary; does nothing when it is cached.
set -euo pipefail
version=$1 module=github.com/FerretDB/FerretDB
cache=${TENANCY_CACHE:-$HOME/.cache/tenancy-operator}
out="$cache/bin/ferretdb-$version"
if [[ -x "$out" ]]; then echo "$out"; exit 0; fi
work="$cache/build/ferretdb-$version"
rm -rf "$work"; mkdir -p "$work" "$cache/bin"
cd "$work"
go mod init tenancy.dev/platform/ferretdb >/dev/null 2>&1
printf "//go:build tools\n\npackage tools\n\nimport _ \"%s/cmd/ferretdb\"\n" "$module" >tools.go
go get "$module/cmd/ferretdb@$version" >&2
go mod vendor >&2
printf '%s\n' "$version" >"vendor/$module/build/version/version.txt"
# The build tag ferretdb_dev is off: a release build.
CGO_ENABLED=0 go build -mod=vendor -trimpath -ldflags "-s -w" -o "$out.tmp" "$module/cmd/ferretdb" >&2
mv "$out.tmp" "$out"
echo "$out"
