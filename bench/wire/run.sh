#!/usr/bin/env bash
# Wire benchmarks for docs/benchmarks.md ("Wire"): AEAD throughput on 64 KiB frames (libsodium
# ChaChaPoly and AES-256-GCM, swift-crypto for comparison, openssl speed as the reference), and a
# 2 GiB loopback TCP transfer between two processes through the full handler stack, against a plain
# unencrypted NIO transfer, all in one run. Prints every run and the medians and ratios.
#
# Usage: bench/wire/run.sh [runs=5] [bytes=2147483648]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
BYTES=${2:-2147483648}
OUT=bench/out
mkdir -p "$OUT"

swift build -c release --product harp-wire-bench >/dev/null
BIN=.build/release/harp-wire-bench

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

transfer() {  # mode -> MB/s
    local mode=$1 log="$OUT/receive-$1.log" port=""
    rm -f "$log"
    "$BIN" receive "$mode" >"$log" 2>&1 &
    local receiver=$!
    for _ in $(seq 100); do
        port=$(awk '/^port/ { print $2 }' "$log" 2>/dev/null || true)
        [ -n "$port" ] && break
        sleep 0.05
    done
    "$BIN" send "$mode" "$port" "$BYTES"
    wait "$receiver"
    awk '/^transfer/ { print $(NF - 1) }' "$log"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "openssl: $(openssl version)"

: >"$OUT/aead.txt"
for run in $(seq "$RUNS"); do "$BIN" aead 2 >>"$OUT/aead.txt"; done
: >"$OUT/openssl.txt"
for run in $(seq "$RUNS"); do
    for cipher in chacha20-poly1305 aes-256-gcm; do
        openssl speed -evp "$cipher" -bytes 65536 -seconds 2 2>/dev/null | awk -v c="$cipher" '$1 ~ /^(ChaCha20-Poly1305|AES-256-GCM)$/ { sub(/k$/, "", $2); printf "openssl %s %.0f\n", c, $2 * 1000 / 1e6 }' >>"$OUT/openssl.txt"
    done
done
: >"$OUT/transfer.txt"
for run in $(seq "$RUNS"); do
    echo "noise $(transfer noise)" >>"$OUT/transfer.txt"
    echo "plain $(transfer plain)" >>"$OUT/transfer.txt"
done

m() { median; }
CC_SO=$(awk '/aead ChaChaPoly seal\+open/ { print $4 }' "$OUT/aead.txt" | m)
CC_S=$(awk '/aead ChaChaPoly seal / { print $4 }' "$OUT/aead.txt" | m)
GCM_SO=$(awk '/aead AESGCM seal\+open/ { print $4 }' "$OUT/aead.txt" | m)
GCM_S=$(awk '/aead AESGCM seal / { print $4 }' "$OUT/aead.txt" | m)
SC_CC=$(awk '/swift-crypto-ChaChaPoly/ { print $4 }' "$OUT/aead.txt" | m)
SC_GCM=$(awk '/swift-crypto-AESGCM/ { print $4 }' "$OUT/aead.txt" | m)
OSSL_CC=$(awk '/openssl chacha20-poly1305/ { print $3 }' "$OUT/openssl.txt" | m)
OSSL_GCM=$(awk '/openssl aes-256-gcm/ { print $3 }' "$OUT/openssl.txt" | m)
NOISE=$(awk '/^noise/ { print $2 }' "$OUT/transfer.txt" | m)
PLAIN=$(awk '/^plain/ { print $2 }' "$OUT/transfer.txt" | m)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "runs: $RUNS, transfer: $BYTES bytes, medians in MB/s (10^6 bytes/s)"
echo "aead libsodium ChaChaPoly  seal $CC_S  seal+open $CC_SO"
echo "aead libsodium AESGCM      seal $GCM_S  seal+open $GCM_SO"
echo "aead swift-crypto          ChaChaPoly seal $SC_CC  AESGCM seal $SC_GCM"
echo "openssl speed 64 KiB       chacha20-poly1305 $OSSL_CC  aes-256-gcm $OSSL_GCM"
echo "ratio libsodium ChaChaPoly seal / openssl chacha20-poly1305: $(ratio "$CC_S" "$OSSL_CC")"
echo "ratio libsodium AESGCM seal / openssl aes-256-gcm: $(ratio "$GCM_S" "$OSSL_GCM")"
echo "ratio AESGCM / ChaChaPoly (seal+open): $(ratio "$GCM_SO" "$CC_SO")"
echo "transfer noise (full stack) $NOISE  plain NIO $PLAIN  ratio noise/plain $(ratio "$NOISE" "$PLAIN")"
