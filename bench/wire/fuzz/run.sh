#!/usr/bin/env bash
# Builds the libFuzzer targets for the wire decoders and runs one of them (docs/fuzzing.md):
#   run.sh [SECONDS] [messages|transport] [libFuzzer options...]
# messages (the default): harp-wire-fuzz, MessageParser and FrameParser; corpus in bench/out/fuzz-corpus.
# transport: harp-transport-fuzz, TransportReader against MessageParser; corpus in bench/out/fuzz-corpus-reader,
# seeded with the sample messages.
# CORPUS=folder chooses another corpus folder.
set -euo pipefail
if [[ -n "${CORPUS:-}" ]]; then CORPUS=$(realpath -m "$CORPUS"); fi
cd "$(dirname "$0")"
SECONDS_TO_RUN=${1:-60}
TARGET=${2:-messages}
# -enable-testing: harp-transport-fuzz reaches SwarmKit's internal TransportReader by `@testable import`.
swift build -c release --sanitize fuzzer -Xswiftc -enable-testing
case "$TARGET" in
messages)
    corpus=${CORPUS:-../../out/fuzz-corpus}
    mkdir -p "$corpus"
    exec .build/release/harp-wire-fuzz "$corpus" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 \
        -rss_limit_mb=512 "${@:3}"
    ;;
transport)
    corpus=${CORPUS:-../../out/fuzz-corpus-reader}
    mkdir -p "$corpus"
    HARP_FUZZ_SEED_DIR="$corpus" exec .build/release/harp-transport-fuzz "$corpus" \
        -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -rss_limit_mb=512 "${@:3}"
    ;;
*)
    echo "usage: $0 [SECONDS] [messages|transport] [libFuzzer options...]" >&2
    exit 64
    ;;
esac
