#!/usr/bin/env bash
# install-controllers.sh builds the real Tekton Pipelines controller and the Argo
# Workflows workflow-controller from the Go module proxy into
# $PIPEFN_CACHE/ctrl/bin (default $HOME/.cache/pipefn/ctrl/bin) once, for the
# end-to-end suite in tests/controllers (make e2e).
#
# Both modules carry replace directives, so `go install module@version` refuses
# them; instead each module's source is copied out of the module cache and built
# inside its own tree, with its own go.mod and go.sum: the exact dependency set
# the projects release with. Nothing of either module enters pipefn's go.mod.
#
# Idempotent: binaries already present are kept (delete them to rebuild).
set -euo pipefail

CACHE=${PIPEFN_CACHE:-$HOME/.cache/pipefn}
BIN=$CACHE/ctrl/bin
BUILD=$CACHE/ctrl-build
TEKTON_VERSION=${TEKTON_VERSION:-v1.11.0}
ARGO_VERSION=${ARGO_VERSION:-v3.7.9}
GO=${GO:-go}

export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0
mkdir -p "$BIN" "$BUILD"

# build MODULE VERSION PACKAGE OUT: copy MODULE@VERSION's source out of the
# module cache (read-only there) and build ./PACKAGE of it as $BIN/OUT.
build() {
  local module=$1 version=$2 pkg=$3 out=$4
  if [ -x "$BIN/$out" ]; then
    return 0
  fi
  echo "install-controllers: building $out from $module@$version (once; cached in $BIN)" >&2
  local src
  src=$("$GO" mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$src" ] || { echo "install-controllers: cannot download $module@$version" >&2; exit 1; }
  local dir=$BUILD/$out-$version
  rm -rf "$dir"
  cp -r "$src" "$dir"
  chmod -R u+w "$dir"
  (cd "$dir" && "$GO" build -trimpath -o "$BIN/$out.tmp" "./$pkg")
  mv "$BIN/$out.tmp" "$BIN/$out"
  rm -rf "$dir"
}

build github.com/tektoncd/pipeline "$TEKTON_VERSION" cmd/controller tekton-controller
build github.com/argoproj/argo-workflows/v3 "$ARGO_VERSION" cmd/workflow-controller workflow-controller
echo "install-controllers: $BIN has tekton-controller ($TEKTON_VERSION) and workflow-controller ($ARGO_VERSION)" >&2
