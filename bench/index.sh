#!/usr/bin/env bash
# Indexing benchmark: harp-cli index against `openssl dgst -sha256` on the same generated file, warm page cache.
# Prints medians, their ratio (target >= 0.8) and harp's peak RSS (target < 64 MiB).
#   bench/index.sh               # 2 GiB, 5 runs
#   SIZE_MIB=512 RUNS=3 bench/index.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
swift build -c release --product harp-cli >&2
bin="$(swift build -c release --show-bin-path)/harp-cli"
exec python3 "$here/index_bench.py" "$bin" "${SIZE_MIB:-2048}" "${RUNS:-5}"
