#!/usr/bin/env bash
# Builds one Go program from its module into the per-version cache, in a throwaway wrapper module.
# Usage: build-go-tool.sh NAME MODULE@VERSION PACKAGE [LDFLAGS]
# Prints the path of the binary. Does nothing when the cached binary exists.
set -euo pipefail
name=$1 modver=$2 pkg=$3 ldflags=${4:-}
module=${modver%@*} version=${modver#*@}
cache=${TENANCY_CACHE:-$HOME/.cache/tenancy-operator}
out="$cache/bin/$name-$version"
if [[ -x "$out" ]]; then echo "$out"; exit 0; fi
work="$cache/build/$name-$version"
rm -rf "$work"; mkdir -p "$work" "$cache/bin"
cd "$work"
go mod init "tenancy.dev/platform/$name" >/dev/null 2>&1
# k8s.io/kubernetes points its staging modules at ./staging; map each to its published v0.x.y.
if [[ $module == k8s.io/kubernetes ]]; then
  gomod=$(go mod download -json "$modver" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  staging_version="v0.${version#v1.}"
  grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | while read -r m; do
    go mod edit -replace "$m=$m@$staging_version"
  done
  godebug=$(grep -E '^godebug ' "$gomod" || true)
  [[ -n $godebug ]] && echo "$godebug" >> go.mod
fi
go get "$pkg@$version" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg" >&2
mv "$out.tmp" "$out"
echo "$out"
