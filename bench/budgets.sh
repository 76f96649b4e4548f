#!/usr/bin/env bash
# bench/budgets.sh BIN STS OUTDIR: the budgets of issue 23 (DESIGN.md
# section 7) for the helper BIN, in instructions (callgrind, whole process,
# deterministic on a busy machine) and peak RSS, with configs shaped like
# the README's example (every field, pretty-printed; bench/fixtures.py
# `readme`), against the example STS at STS (target/release/examples/sts):
#
#   hit-1, hit-1000      cache-hit get with 1 and 1000 configured entries
#   list-config-1000     list, 1000 configured, nothing stored
#   list-store-1000      list, 1000 stored (a synthesized keyring index), 1 configured
#   rss-get-max, rss-list-max
#                        peak RSS (KiB, largest of 5) of a hit and of list
#                        with a config at the 1 MiB limit
#
# Each hit runs twice before it is measured, the configs' times a few
# seconds old: the first fills the cache, and a helper that keeps an index
# of its config writes it then.
#
#   bench/budgets.sh target/release/docker-credential-exchange target/release/examples/sts /tmp/after
set -euo pipefail
BIN=$1 STS=$2 OUT=$3
FIX="python3 $(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fixtures.py"
mkdir -p "$OUT"; W=$(mktemp -d /tmp/dce-budgets.XXXXXX)
mkfifo "$W/in"
"$STS" --json --until-stdin-closes <"$W/in" >"$W/sts.json" 2>/dev/null &
exec 3>"$W/in"
for _ in $(seq 100); do [ -s "$W/sts.json" ] && break; sleep 0.05; done
URL=$($FIX field "$W/sts.json" url)
SUBJ=$($FIX field "$W/sts.json" subject_token)
for n in 1 1000 max; do $FIX readme "$W/c$n.json" "$n" "$URL"; done
mkdir -p -m 700 "$W/data" "$W/data-empty" "$W/data-1000" "$W/tmpl"
printf '{"version":1,"entries":{"template.bench.test":{"server_url":"template.bench.test","username":"u","kind":"credential"}}}' >"$W/tmpl/index.json"
$FIX index "$W/tmpl/index.json" "$W/data-1000/index.json" 1000
export STS_CLIENT_SECRET=bench-client-secret HOME="$W" DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR="$W/cache" \
    DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR="$W/data" DOCKER_CREDENTIAL_EXCHANGE_STORE=file
printf '{"ServerURL":"hit.bench.test","Username":"bench","Secret":"%s"}' "$SUBJ" | "$BIN" store
echo hit.bench.test >"$W/req"
cg() { # cg NAME STDIN [VAR=VALUE...] -- PROGRAM ARGS...
    local name=$1 input=$2
    shift 2
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    env "${vars[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$name" "$@" \
        <"$input" >"$OUT/out.$name" 2>"$OUT/cg.$name.log"
    echo "$name $(grep -E '^(summary|totals):' "$OUT/cg.$name" | head -n1 | awk '{print $2}')"
}
rss() { # rss NAME STDIN [VAR=VALUE...] -- PROGRAM ARGS...: largest of 5, KiB
    local name=$1 input=$2 max=0 kib
    shift 2
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    for _ in 1 2 3 4 5; do
        kib=$(env "${vars[@]}" /usr/bin/time -f %M "$@" <"$input" 2>&1 >/dev/null | tail -n1)
        [ "$kib" -gt "$max" ] && max=$kib
    done
    echo "$name $max"
}
sleep 4 # the helper indexes only a config whose times are 3 s old
for n in 1 1000 max; do
    for _ in 1 2; do
        DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/c$n.json" "$BIN" get <"$W/req" | grep -q '"Username":"bench"'
    done
done
for n in 1 1000; do cg "hit-$n" "$W/req" DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/c$n.json" -- "$BIN" get; done
cg list-config-1000 /dev/null DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/c1000.json" \
    DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR="$W/data-empty" -- "$BIN" list
cg list-store-1000 /dev/null DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/c1.json" \
    DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR="$W/data-1000" DOCKER_CREDENTIAL_EXCHANGE_STORE=keyring -- "$BIN" list
# The answers were right, not errors measured fast.
grep -q '"Username":"bench"' "$OUT/out.hit-1000"
[ "$(python3 -c "import json;print(len(json.load(open('$OUT/out.list-config-1000'))))")" = 1000 ]
[ "$(python3 -c "import json;print(len(json.load(open('$OUT/out.list-store-1000'))))")" = 1001 ]
echo "config-max-bytes $(stat -c %s "$W/cmax.json")"
rss rss-get-max "$W/req" DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/cmax.json" -- "$BIN" get
rss rss-list-max /dev/null DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/cmax.json" \
    DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR="$W/data-1000" DOCKER_CREDENTIAL_EXCHANGE_STORE=keyring -- "$BIN" list
exec 3>&-
rm -rf "$W"
