#!/usr/bin/env bash
# Wire benchmarks for docs/benchmarks.md ("Wire"): AEAD throughput on 64 KiB frames (ChaChaPoly from
# libsodium, AESGCM from swift-crypto's BoringSSL (its EVP interface) as sessions use them, swift-crypto's and libsodium's AES-256-GCM side by side,
# openssl speed as the reference), and a 2 GiB loopback TCP transfer between two processes through the
# full handler stack, against a plain unencrypted NIO transfer, all in one run. Prints every run and the
# medians and ratios.
#
# Usage: bench/wire/run.sh [runs=5] [bytes=2147483648]
# Environment: BIN, a harp-wire-bench binary to use instead of building one (`swift build -c release`);
# BASELINE, another harp-wire-bench binary (an earlier commit's): each run then also moves the bytes with
# it, just before the current binary, and the ratio current / baseline of the medians is printed.
# The AEAD rates are per CPU second of the measuring thread; each transfer also prints the CPU seconds
# (user + system, /usr/bin/time) of the receiving and of the sending process.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
BYTES=${2:-2147483648}
OUT=bench/out
mkdir -p "$OUT"

if [ -z "${BIN:-}" ]; then
    swift build -c release --product harp-wire-bench >/dev/null
    BIN=.build/release/harp-wire-bench
fi
BASELINE=${BASELINE:-}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

transfer() {  # mode [binary] -> "MB/s receiver-CPU-s sender-CPU-s"
    local mode=$1 bin=${2:-$BIN} log="$OUT/receive-$1.log" port=""
    rm -f "$log"
    /usr/bin/time -f "%U %S" -o "$OUT/cpu-receive.txt" "$bin" receive "$mode" >"$log" 2>&1 &
    local receiver=$!
    for _ in $(seq 100); do
        port=$(awk '/^port/ { print $2 }' "$log" 2>/dev/null || true)
        [ -n "$port" ] && break
        sleep 0.05
    done
    /usr/bin/time -f "%U %S" -o "$OUT/cpu-send.txt" "$bin" send "$mode" "$port" "$BYTES"
    wait "$receiver"
    echo "$(awk '/^transfer/ { print $(NF - 1) }' "$log") $(awk '{ print $1 + $2 }' "$OUT/cpu-receive.txt") $(awk '{ print $1 + $2 }' "$OUT/cpu-send.txt")"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "openssl: $(openssl version)"

: >"$OUT/aead.txt"
for run in $(seq "$RUNS"); do "$BIN" aead 8 >>"$OUT/aead.txt"; done
: >"$OUT/openssl.txt"
for run in $(seq "$RUNS"); do
    for cipher in chacha20-poly1305 aes-256-gcm; do
        openssl speed -evp "$cipher" -bytes 65536 -seconds 2 2>/dev/null | awk -v c="$cipher" '$1 ~ /^(ChaCha20-Poly1305|AES-256-GCM)$/ { sub(/k$/, "", $2); printf "openssl %s %.0f\n", c, $2 * 1000 / 1e6 }' >>"$OUT/openssl.txt"
    done
done
: >"$OUT/transfer.txt"
for run in $(seq "$RUNS"); do
    if [ -n "$BASELINE" ]; then echo "baseline $(transfer noise "$BASELINE")" >>"$OUT/transfer.txt"; fi
    echo "noise $(transfer noise)" >>"$OUT/transfer.txt"
    echo "plain $(transfer plain)" >>"$OUT/transfer.txt"
done

m() { median; }
aead() { awk -v n="aead $1 " 'index($0, n) == 1 { for (i = 1; i <= NF; i++) if ($i == "MB/s") print $(i - 1) }' "$OUT/aead.txt" | m; }
CC_S=$(aead "ChaChaPoly seal")
CC_SO=$(aead "ChaChaPoly seal+open")
GCM_S=$(aead "AESGCM seal")
GCM_SO=$(aead "AESGCM seal+open")
SW_S=$(aead "AESGCM-swift-crypto seal")
SW_SO=$(aead "AESGCM-swift-crypto seal+open")
LS_S=$(aead "AESGCM-libsodium seal")
LS_SO=$(aead "AESGCM-libsodium seal+open")
SC_CC=$(aead "swift-crypto-ChaChaPoly-Data seal")
SC_GCM=$(aead "swift-crypto-AESGCM-Data seal")
OSSL_CC=$(awk '/openssl chacha20-poly1305/ { print $3 }' "$OUT/openssl.txt" | m)
OSSL_GCM=$(awk '/openssl aes-256-gcm/ { print $3 }' "$OUT/openssl.txt" | m)
col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$OUT/transfer.txt" | m; }
NOISE=$(col noise 2)
PLAIN=$(col plain 2)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "runs: $RUNS, transfer: $BYTES bytes, medians in MB/s (10^6 bytes/s)"
echo "aead ChaChaPoly (libsodium)        seal $CC_S  seal+open $CC_SO"
echo "aead AESGCM (BoringSSL EVP, in use) seal $GCM_S  seal+open $GCM_SO"
echo "aead AESGCM-swift-crypto AES.GCM   seal $SW_S  seal+open $SW_SO"
echo "aead AESGCM-libsodium (earlier)    seal $LS_S  seal+open $LS_SO"
echo "aead swift-crypto from Data        ChaChaPoly seal $SC_CC  AESGCM seal $SC_GCM"
echo "openssl speed 64 KiB               chacha20-poly1305 $OSSL_CC  aes-256-gcm $OSSL_GCM"
echo "ratio AESGCM in use / swift-crypto AES.GCM: seal $(ratio "$GCM_S" "$SW_S")  seal+open $(ratio "$GCM_SO" "$SW_SO")"
echo "ratio AESGCM in use / libsodium: seal $(ratio "$GCM_S" "$LS_S")  seal+open $(ratio "$GCM_SO" "$LS_SO")"
echo "ratio AESGCM seal / openssl aes-256-gcm: $(ratio "$GCM_S" "$OSSL_GCM")"
echo "ratio AESGCM / ChaChaPoly (seal+open): $(ratio "$GCM_SO" "$CC_SO")"
echo "transfer noise (full stack) $NOISE  plain NIO $PLAIN  ratio noise/plain $(ratio "$NOISE" "$PLAIN")"
echo "transfer CPU seconds (receiver / sender): noise $(col noise 3) / $(col noise 4)  plain $(col plain 3) / $(col plain 4)"
if [ -n "$BASELINE" ]; then
    BASE=$(col baseline 2)
    echo "transfer baseline noise $BASE  ratio noise/baseline $(ratio "$NOISE" "$BASE")  baseline/plain $(ratio "$BASE" "$PLAIN")"
    echo "transfer baseline CPU seconds (receiver / sender): $(col baseline 3) / $(col baseline 4)"
    echo "ratio CPU seconds noise/baseline: receiver $(ratio "$(col noise 3)" "$(col baseline 3)")  sender $(ratio "$(col noise 4)" "$(col baseline 4)")"
fi
