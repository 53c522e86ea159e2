#!/usr/bin/env bash
# The files of the container image, without a container builder:
#
#   packaging/image-rootfs.sh DEST
#
# builds the gateway reproducibly (packaging/build.sh) and lays out under
# DEST exactly what packaging/Containerfile copies into its runtime image:
#
#   DEST/usr/local/bin/passerelle   the binary (cgo: glibc only, for SQLite)
#   DEST/data/                      the volume: config.yaml, registration.yaml,
#                                   doublepuppet-registration.yaml, passerelle.db
#
# The Containerfile's build stage runs this script; CI runs it on machines
# without a container daemon (packaging/image_test.go), and builds the image
# itself only where `docker info` works.
set -euo pipefail

DEST=${1:?usage: packaging/image-rootfs.sh DEST}
cd "$(dirname "$0")/.."
mkdir -p "$DEST/usr/local/bin"
DEST=$(cd "$DEST" && pwd)
packaging/build.sh "$DEST/usr/local/bin/passerelle"
chmod 0755 "$DEST/usr/local/bin/passerelle"
install -d -m 0700 "$DEST/data"
echo "image root file system in $DEST"
