#!/usr/bin/env bash
# install-kube.sh builds kube-apiserver and etcd from the Go module proxy into
# $PIPEFN_CACHE/kube/bin (default $HOME/.cache/pipefn/kube/bin) once, for the
# integration tests in tests/k8s (controller-runtime's envtest starts them from
# KUBEBUILDER_ASSETS). Neither binary is packaged usefully for Debian.
#
# It is idempotent: binaries already present are kept. The kube-apiserver build
# takes ~900 CPU-seconds and ~3 GB of memory; it runs once per machine/CI cache.
set -euo pipefail

CACHE=${PIPEFN_CACHE:-$HOME/.cache/pipefn}
BIN=$CACHE/kube/bin
BUILD=$CACHE/kube-build
K8S_VERSION=${K8S_VERSION:-1.35.4}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
GO=${GO:-go}

mkdir -p "$BIN"

# The wrapper modules live outside the repository so that pipefn's go.mod never
# carries k8s.io/kubernetes (which is not meant to be imported as a library).
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

build_apiserver() {
  local dir=$BUILD/apiserver
  mkdir -p "$dir"
  cd "$dir"
  # k8s.io/kubernetes points each staging module at ./staging/src/...; replace
  # every one of them with the published v0.x release of the same minor/patch.
  local staging_version=v0.${K8S_VERSION#1.}
  local modfile
  modfile=$("$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -n "$modfile" ] || { echo "install-kube: cannot download k8s.io/kubernetes@v$K8S_VERSION" >&2; exit 1; }
  {
    echo "module pipefn.local/kube-build"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$modfile"
    echo ")"
  } >go.mod
  cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
EOF
  "$GO" mod tidy -e >/dev/null 2>&1 || true
  "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION"
  # The version kube's own build stamps (hack/lib/version.sh), so /version tells the truth.
  local v=k8s.io/component-base/version
  local minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  "$GO" build -trimpath -ldflags "-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor" \
    -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

build_etcd() {
  local dir=$BUILD/etcd
  mkdir -p "$dir"
  cd "$dir"
  cat >go.mod <<EOF
module pipefn.local/etcd-build

go 1.25.0
EOF
  cat >main.go <<'EOF'
// Command etcd is a build of etcd's own main package for pipefn's tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  "$GO" get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  "$GO" mod tidy
  "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" .
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

if [ ! -x "$BIN/etcd" ]; then
  echo "install-kube: building etcd v$ETCD_VERSION into $BIN"
  build_etcd
fi
# A binary without the version stamp answers /version with v0.0.0-master, which
# Knative-based controllers (Tekton's) refuse at start-up: rebuild it (the link
# step only, when the build cache is warm).
if [ ! -x "$BIN/kube-apiserver" ] || ! "$BIN/kube-apiserver" --version 2>/dev/null | grep -q "v$K8S_VERSION\$"; then
  echo "install-kube: building kube-apiserver v$K8S_VERSION into $BIN (several minutes)"
  build_apiserver
fi
echo "install-kube: KUBEBUILDER_ASSETS=$BIN"
