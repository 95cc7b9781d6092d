"""Runs harp-cli index and openssl dgst -sha256 alternately on one file and prints medians and ratios."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(argv):
    """Runs argv, returns (wall seconds, peak RSS in KiB) of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss


def main():
    binary, size_mib, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    work = tempfile.mkdtemp(prefix="harp-bench-index-")
    try:
        path = os.path.join(work, "input.bin")
        # Deterministic incompressible bytes: the AES-256-CTR keystream of a fixed key.
        key = "00" * 32
        with open(path, "wb") as out:
            enc = subprocess.Popen(
                ["openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", "0" * 32, "-in", "/dev/zero"],
                stdout=subprocess.PIPE)
            remaining = size_mib << 20
            while remaining:
                block = enc.stdout.read(min(remaining, 8 << 20))
                out.write(block)
                remaining -= len(block)
            enc.kill()
            enc.wait()
        size = os.path.getsize(path)
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

        harp, openssl, rss = [], [], []
        for i in range(runs):
            t, _ = run(["openssl", "dgst", "-sha256", path])
            openssl.append(size / t)
            store = os.path.join(work, f"store-{i}.sqlite")
            t, peak = run([binary, "index", path, "--store", store])
            harp.append(size / t)
            rss.append(peak)
        h, o = statistics.median(harp), statistics.median(openssl)
        mib = 1 << 20
        print(f"file: {size / mib:.0f} MiB, runs: {runs}, cpu: {os.cpu_count()} cores")
        print(f"openssl dgst -sha256 median: {o / mib:8.1f} MiB/s  (runs: {', '.join(f'{x / mib:.0f}' for x in openssl)})")
        print(f"harp-cli index       median: {h / mib:8.1f} MiB/s  (runs: {', '.join(f'{x / mib:.0f}' for x in harp)})")
        print(f"ratio harp/openssl: {h / o:.2f}  (target >= 0.80)")
        print(f"harp peak RSS: max {max(rss) / 1024:.1f} MiB, median {statistics.median(rss) / 1024:.1f} MiB  (target < 64 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
