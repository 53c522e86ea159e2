#!/usr/bin/env bash
# Reproducible build of the passerelle binary, stamped with its version.
#
#   packaging/build.sh [OUTPUT]        (default: ./passerelle)
#
# Two builds of the same commit give byte-identical binaries, wherever the
# clone is: the paths of the build machine are trimmed (-trimpath), the Go
# build ID is left out (-buildid=), and the build time is the commit's time
# (SOURCE_DATE_EPOCH, as reproducible-builds.org defines it; set it to
# override). The tag and commit come from git (`git describe`), and Go
# records the VCS state too (-buildvcs=true): `passerelle --version` prints
# them with the Go version and the pinned library versions.
#
# CGO stays on: the default database is SQLite (mattn/go-sqlite3, a cgo
# driver). The crypto is pure Go (-tags goolm): no libolm.
#
# Environment: GO (default go), SOURCE_DATE_EPOCH, and GOOS/GOARCH/CC as for
# go build.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-passerelle}
GO=${GO:-go}

git rev-parse --git-dir >/dev/null 2>&1 || { echo "packaging/build.sh: not a git clone (the version comes from git)" >&2; exit 1; }
TAG=$(git describe --tags --always --dirty)
COMMIT=$(git rev-parse HEAD)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
export SOURCE_DATE_EPOCH
BUILD_TIME=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

export CGO_ENABLED=${CGO_ENABLED:-1}
"$GO" build -tags goolm -trimpath -buildvcs=true \
	-ldflags "-s -w -buildid= -X main.Tag=$TAG -X main.Commit=$COMMIT -X main.BuildTime=$BUILD_TIME" \
	-o "$OUT" ./cmd/passerelle
echo "built $OUT: passerelle $TAG ($COMMIT, $BUILD_TIME)"
