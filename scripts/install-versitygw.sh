#!/usr/bin/env bash
# install-versitygw.sh installs versitygw, the S3-compatible gateway that the
# shared/artifacts tests start with its posix backend, into $HOME/.cache/pipefn/bin.
# It is independent of the Makefile so CI and developers can call it directly.
set -euo pipefail

VERSION="${VERSITYGW_VERSION:-v1.8.0}"
DEST="${PIPEFN_CACHE:-$HOME/.cache/pipefn}/bin"

if [[ -x "$DEST/versitygw" ]]; then
  echo "versitygw already installed at $DEST/versitygw"
  exit 0
fi
mkdir -p "$DEST"
echo "installing versitygw $VERSION into $DEST (go install; this compiles from source)"
# CGO off: the gateway does not need it and a static binary is easier to move around.
GOBIN="$DEST" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@${VERSION}"
"$DEST/versitygw" --version || true
