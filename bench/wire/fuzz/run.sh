#!/usr/bin/env bash
# Builds the libFuzzer target for the wire decoders and runs it (default 60 s). Corpus in bench/out/fuzz-corpus.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN=${1:-60}
swift build -c release --sanitize fuzzer --product harp-wire-fuzz
mkdir -p ../../out/fuzz-corpus
.build/release/harp-wire-fuzz ../../out/fuzz-corpus -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -rss_limit_mb=512
