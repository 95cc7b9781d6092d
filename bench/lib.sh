# Shared by the benchmark scripts (sourced, not run): installing missing tools and finding harp-cli.

APT_UPDATED=0

# need_tools COMMAND:DEBIAN-PACKAGE ...: installs the packages of missing commands with apt-get when INSTALL=1 (no
# service is started by them: policy-rc.d refuses it for the length of the install); returns 1, naming what is still
# missing, otherwise.
need_tools() {
    local missing=() pkgs=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || { missing+=("${pair%%:*}"); pkgs+=("${pair##*:}"); }
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${INSTALL:-1}" = 1 ] && command -v apt-get >/dev/null; then
        echo "installing ${pkgs[*]} (apt-get)" >&2
        if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >&2 || true; APT_UPDATED=1; fi
        local policy=/usr/sbin/policy-rc.d made_policy=0
        if [ ! -e "$policy" ] && [ -w /usr/sbin ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 || true
        if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
    fi
    local still=()
    for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || still+=("${pair%%:*} (apt: ${pair##*:})"); done
    if [ ${#still[@]} -gt 0 ]; then
        echo "missing: ${still[*]}; install them (apt-get install ...)" >&2
        return 1
    fi
}

# find_harp REPO [BINARY]: sets HARP to BINARY, or to a release harp-cli built in REPO.
find_harp() {
    local repo=$1 binary=${2:-}
    if [ -n "$binary" ]; then
        HARP=$binary
    else
        (cd "$repo" && swift build -c release --product harp-cli >&2)
        HARP="$(cd "$repo" && swift build -c release --show-bin-path)/harp-cli"
    fi
    [ -x "$HARP" ] || { echo "no harp-cli at $HARP" >&2; exit 1; }
}

# wait_line FILE REGEX SECONDS [PID]: waits until FILE has a line matching REGEX; fails after SECONDS, or as soon as
# PID (when given) has exited.
wait_line() {  # file regex seconds [pid]
    local file=$1 regex=$2 limit=$3 pid=${4:-} t=0
    while ! grep -qE "$regex" "$file" 2>/dev/null; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
        t=$((t + 1))
        if [ "$t" -ge $((limit * 10)) ]; then return 1; fi
    done
}
