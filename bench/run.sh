#!/usr/bin/env bash
# bench/run.sh: measures docker-credential-exchange against a floor and
# against Debian's docker-credential-secretservice, in one run on one
# machine, and prints a table (see bench/RESULTS.md for what each row means).
#
#   bench/run.sh                 # everything, about 2-4 minutes
#   BENCH_ROUNDS=5 bench/run.sh  # more rounds on a noisy machine
#
# Knobs (environment): BENCH_RUNS (hyperfine runs per fast row and round,
# default 200), BENCH_WARMUP (20), BENCH_ROUNDS (3; fast rows are measured
# in rounds, interleaved, so drift on a shared machine hits every row
# alike), BENCH_SLOW_RUNS (runs of the network rows, 40), BENCH_RSS_RUNS (7),
# BENCH_CONC_REPS (repetitions of each concurrency test, 3), BENCH_KEEP=1
# keeps the work directory. CARGO_TARGET_DIR is honoured (default: the
# repository's target/).
#
# Public tools only: cargo/rustc, hyperfine, GNU time, gnome-keyring, dbus,
# curl, python3, and optionally valgrind (instruction counts).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
RUNS=${BENCH_RUNS:-200}
WARMUP=${BENCH_WARMUP:-20}
ROUNDS=${BENCH_ROUNDS:-3}
SLOW_RUNS=${BENCH_SLOW_RUNS:-40}
RSS_RUNS=${BENCH_RSS_RUNS:-7}
CONC_REPS=${BENCH_CONC_REPS:-3}
SS=/usr/bin/docker-credential-secretservice

say() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Phase 1 (outside the D-Bus session): tools and builds.
# ---------------------------------------------------------------------------
if [ -z "${BENCH_SESSION:-}" ]; then
    missing=()
    for pair in hyperfine:hyperfine /usr/bin/time:time gnome-keyring-daemon:gnome-keyring \
        dbus-run-session:dbus secret-tool:libsecret-tools "$SS":golang-docker-credential-helpers \
        curl:curl python3:python3; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
    command -v cargo >/dev/null || { echo "bench: cargo (rustup) is needed" >&2; exit 1; }

    say "building (release) in $CARGO_TARGET_DIR"
    (cd "$REPO" && cargo build --release --quiet --bin docker-credential-exchange --example sts)
    WORK=$(mktemp -d /tmp/dce-bench.XXXXXX)
    rustc -O --edition 2021 -o "$WORK/floor" "$REPO/bench/floor.rs"
    rustc -O --edition 2021 -o "$WORK/launch" "$REPO/bench/launch.rs"
    mkdir -p "$WORK/home" "$WORK/run"
    chmod 700 "$WORK/run"
    # Everything else runs in a private session bus with its own keyring,
    # so no real credentials are read or written. HOME changes only now,
    # after cargo has run.
    exec env -u DOCKER_CREDENTIAL_EXCHANGE_LOG -u DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE \
        -u DOCKER_CREDENTIAL_EXCHANGE_CONFIG -u DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR \
        -u DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR -u DOCKER_CREDENTIAL_EXCHANGE_STORE \
        -u DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE -u XDG_CONFIG_HOME -u XDG_CACHE_HOME -u XDG_DATA_HOME \
        BENCH_SESSION=1 BENCH_WORK="$WORK" HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" \
        dbus-run-session -- bash "${BASH_SOURCE[0]}" "$@"
fi

# ---------------------------------------------------------------------------
# Phase 2 (inside the session): services, fixtures, measurements.
# ---------------------------------------------------------------------------
W=$BENCH_WORK
BIN="$CARGO_TARGET_DIR/release/docker-credential-exchange"
STS="$CARGO_TARGET_DIR/release/examples/sts"
LAUNCH="$W/launch"
FLOOR="$W/floor"
cleanup() {
    exec 3>&- 2>/dev/null || true # closing the STS's stdin stops it
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$W"; else say "kept $W"; fi
}
trap cleanup EXIT

say "starting gnome-keyring and the local STS"
echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
mkfifo "$W/sts.in"
"$STS" --json --until-stdin-closes <"$W/sts.in" >"$W/sts.json" 2>"$W/sts.log" &
exec 3>"$W/sts.in"
for _ in $(seq 100); do [ -s "$W/sts.json" ] && break; sleep 0.05; done
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
TOKEN_URL=$(json_field "$W/sts.json" url)
SUBJECT=$(json_field "$W/sts.json" subject_token)
STATS_URL=$(json_field "$W/sts.json" stats_url)
sts_requests() { curl -fsS "$STATS_URL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

# The helper runs with its defaults under the private HOME: config in
# ~/.config, cache in ~/.cache, the OS keyring (gnome-keyring) as store.
CONFIG_DIR="$W/home/.config/docker-credential-exchange"
CACHE_DIR="$W/home/.cache/docker-credential-exchange"
mkdir -p "$CONFIG_DIR"
cat >"$CONFIG_DIR/config.json" <<EOF
{
  "registries": {
    "hit.bench.test": {
      "token_endpoint": "$TOKEN_URL",
      "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"
    },
    "env.bench.test": {
      "token_endpoint": "$TOKEN_URL",
      "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
      "subject_token": {"source": "env", "var": "BENCH_SUBJECT"}
    }
  }
}
EOF
export BENCH_SUBJECT=$SUBJECT
echo hit.bench.test >"$W/req-hit"
echo env.bench.test >"$W/req-env"
echo plain.bench.test >"$W/req-plain"
store() { # store TOOL URL USER SECRET
    printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$2" "$3" "$4" | "$1" store
}
# The keyring may take a moment to accept its first item.
for _ in $(seq 50); do store "$BIN" hit.bench.test bench "$SUBJECT" 2>/dev/null && break; sleep 0.1; done
store "$BIN" hit.bench.test bench "$SUBJECT"
store "$BIN" plain.bench.test plain-user plain-secret
store "$SS" plain.bench.test plain-user plain-secret
# 50 stored registries for `list` (hit and plain included), same for the peer.
for i in $(seq 1 48); do store "$BIN" "r$i.bench.test" "user$i" "secret-$i"; done
for i in $(seq 1 49); do store "$SS" "r$i.bench.test" "user$i" "secret-$i"; done
# Sanity: the answers are right before anything is timed.
"$BIN" get <"$W/req-plain" | grep -q '"Secret":"plain-secret"'
"$SS" get <"$W/req-plain" | grep -q '"Secret":"plain-secret"'
"$BIN" get <"$W/req-hit" | grep -q '"Username":"bench"'
[ "$("$BIN" list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge 50 ]
# The floor reads a file of the cache entry's size.
cp "$(ls "$CACHE_DIR"/*.json | head -n1)" "$W/small.json"
before=$(sts_requests)
"$BIN" get <"$W/req-hit" >/dev/null
[ "$(sts_requests)" = "$before" ] || { echo "bench: the warm get was not a cache hit" >&2; exit 1; }

hf() { # hf NAME ARGS... : hyperfine without a shell, JSON to $W/NAME.json
    local name=$1
    shift
    # Its warnings about outliers are expected on a shared machine; the
    # log is shown only if hyperfine fails.
    hyperfine -N --style none --export-json "$W/$name.json" "$@" >"$W/$name.log" 2>&1 ||
        { cat "$W/$name.log" >&2; exit 1; }
}

say "fast rows: $ROUNDS rounds x $RUNS runs (warm-up $WARMUP)"
for round in $(seq "$ROUNDS"); do
    say "  round $round"
    hf "fast-$round" --warmup "$WARMUP" --runs "$RUNS" \
        -n floor "$FLOOR $W/small.json" \
        -n launch+floor "$LAUNCH $W/req-hit $FLOOR $W/small.json" \
        -n hit "$LAUNCH $W/req-hit $BIN get" \
        -n keyring "$LAUNCH $W/req-plain $BIN get" \
        -n ss-get "$LAUNCH $W/req-plain $SS get" \
        -n list "$BIN list" \
        -n ss-list "$SS list"
done

say "network rows: $SLOW_RUNS runs"
CURL_ARGS="-fsS -o /dev/null -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d subject_token=$SUBJECT $TOKEN_URL"
DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE=1 hf slow --warmup 3 --runs "$SLOW_RUNS" \
    -n floor "$FLOOR $W/small.json" \
    -n launch+floor "$LAUNCH $W/req-hit $FLOOR $W/small.json" \
    -n cold "$LAUNCH $W/req-env $BIN get" \
    -n curl "curl $CURL_ARGS"

say "peak RSS: $RSS_RUNS runs each"
rss_of() { # rss_of NAME STDIN [VAR=VALUE...] -- PROGRAM ARGS...
    local name=$1 input=$2
    shift 2
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    : >"$W/rss-$name"
    for _ in $(seq "$RSS_RUNS"); do
        env "${vars[@]}" /usr/bin/time -f %M -o "$W/rss.tmp" "$@" <"$input" >/dev/null
        cat "$W/rss.tmp" >>"$W/rss-$name"
    done
}
rss_of floor /dev/null -- "$FLOOR" "$W/small.json"
rss_of hit "$W/req-hit" -- "$BIN" get
rss_of cold "$W/req-env" DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE=1 -- "$BIN" get
rss_of keyring "$W/req-plain" -- "$BIN" get
rss_of ss-get "$W/req-plain" -- "$SS" get
rss_of list /dev/null -- "$BIN" list

say "concurrency: 64 and 256 concurrent cold gets, $CONC_REPS times each"
: >"$W/concurrency"
for n in 64 256; do
    for rep in $(seq "$CONC_REPS"); do
        rm -f "$CACHE_DIR"/*.json
        before=$(sts_requests)
        start=$(date +%s%N)
        pids=()
        for i in $(seq "$n"); do
            "$BIN" get <"$W/req-hit" >"$W/conc.$i" 2>&1 &
            pids+=($!)
        done
        errors=0
        for pid in "${pids[@]}"; do wait "$pid" || errors=$((errors + 1)); done
        end=$(date +%s%N)
        after=$(sts_requests)
        # Every answer must carry the one exchanged token.
        distinct=$(cat "$W"/conc.* | sort -u | wc -l)
        [ "$distinct" = 1 ] || errors=$((errors + 1))
        rm -f "$W"/conc.*
        echo "$n $rep $(((end - start) / 1000)) $((after - before)) $errors" >>"$W/concurrency"
    done
done

if command -v valgrind >/dev/null; then
    say "instruction counts (callgrind)"
    for row in hit plain; do
        valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.$row" "$BIN" get \
            <"$W/req-$row" >/dev/null 2>"$W/callgrind.$row.log"
        grep -E '^(summary|totals):' "$W/callgrind.$row" | head -n1 | awk '{print $2}' >"$W/instr-$row"
    done
    valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.floor" "$FLOOR" "$W/small.json" \
        >/dev/null 2>"$W/callgrind.floor.log"
    grep -E '^(summary|totals):' "$W/callgrind.floor" | head -n1 | awk '{print $2}' >"$W/instr-floor"
fi

# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------
python3 - "$W" "$ROUNDS" "$BIN" <<'PY'
import json, os, statistics, sys

w, rounds, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def names(files):
    # hyperfine 1.15 exports the command line, not the -n name; map back by order.
    order = ["floor", "launch+floor", "hit", "keyring", "ss-get", "list", "ss-list"]
    out = {}
    for f in files:
        res = json.load(open(os.path.join(w, f)))["results"]
        keys = order if len(res) == len(order) else ["floor", "launch+floor", "cold", "curl"]
        for k, r in zip(keys, res):
            out.setdefault(k, []).extend(r["times"])
    return out

fast = names([f"fast-{i}.json" for i in range(1, rounds + 1)])
slow = names(["slow.json"])
med = lambda xs: statistics.median(xs) * 1000  # ms
m = {k: med(v) for k, v in fast.items()}
s = {k: med(v) for k, v in slow.items()}
launcher = m["launch+floor"] - m["floor"]
slow_launcher = s["launch+floor"] - s["floor"]
hit = m["hit"] - launcher
keyring = m["keyring"] - launcher
ss_get = m["ss-get"] - launcher
cold = s["cold"] - slow_launcher
floor = m["floor"]

def rss(name):
    vals = [int(x) for x in open(os.path.join(w, f"rss-{name}")).read().split()]
    return statistics.median(vals) / 1024

conc = [l.split() for l in open(os.path.join(w, "concurrency")).read().splitlines()]
def instr(name):
    p = os.path.join(w, f"instr-{name}")
    return int(open(p).read().strip().replace(",", "")) if os.path.exists(p) and open(p).read().strip() else None

rows = []
def row(what, ms, note=""):
    rows.append((what, f"{ms:.2f} ms", f"{ms / floor:.2f}x", f"{ms / ss_get:.2f}x" if ss_get else "", note))

print()
print(f"docker-credential-exchange benchmark ({binary}, {os.path.getsize(binary) / 1e6:.1f} MB)")
print(f"medians; fast rows: {len(fast['floor'])} runs each over {rounds} rounds; launcher cost {launcher:.3f} ms subtracted")
print()
print("| row | median | / floor | / secretservice get | note |")
print("|---|---:|---:|---:|---|")
row("1. get, cache hit (exchange registry)", hit, "budget <= 2x floor, < 0.25x ss")
row("2. get, plain keyring entry", keyring, "budget <= 1x ss")
row("3. secretservice get (peer)", ss_get)
row("4. floor: rustc -O, read one small file", floor)
row("5a. get, cold cache (exchange, no cache)", cold, f"helper's own overhead over curl: {cold - s['curl']:.2f} ms")
row("5b. STS round trip alone (curl POST)", s["curl"], "includes curl's own start-up")
row("6. list, 50 stored registries", m["list"], "budget <= 2x floor")
row("6'. secretservice list, 50 items", m["ss-list"])
for r in rows:
    print("| " + " | ".join(r) + " |")
print()
print("| peak RSS (median of runs) | MiB |")
print("|---|---:|")
for name, label in [("hit", "get, cache hit"), ("cold", "get, cold (exchange)"), ("keyring", "get, plain keyring"),
                    ("list", "list, 50 registries"), ("ss-get", "secretservice get"), ("floor", "floor")]:
    print(f"| {label} | {rss(name):.2f} |")
print()
print("| concurrent cold gets | wall time (median) | STS requests (each rep) | errors |")
print("|---|---:|---|---:|")
for n in ("64", "256"):
    reps = [c for c in conc if c[0] == n]
    wall = statistics.median(int(c[2]) for c in reps) / 1000
    print(f"| {n} | {wall:.0f} ms | {', '.join(c[3] for c in reps)} | {sum(int(c[4]) for c in reps)} |")
ih, ik, fl = instr("hit"), instr("plain"), instr("floor")
if ih:
    print()
    print(f"instructions (callgrind, whole process): get cache hit {ih:,}; get plain keyring {ik:,}; floor {fl:,}")

checks = [
    ("cache-hit get <= 2x floor", hit <= 2 * floor),
    ("cache-hit get < 1/4 of secretservice get", hit < ss_get / 4),
    ("keyring get no slower than secretservice get", keyring <= ss_get),
    ("list of 50 <= 2x floor", m["list"] <= 2 * floor),
    ("peak RSS < 10 MiB (hit and cold)", max(rss("hit"), rss("cold")) < 10),
    ("exactly 1 exchange per concurrent burst, 0 errors", all(c[3] == "1" and c[4] == "0" for c in conc)),
]
print()
for what, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")
goals = [("goal: cache hit <= 1.5x floor", hit <= 1.5 * floor), ("goal: cache hit < 1/5 of secretservice", hit < ss_get / 5),
         ("goal: peak RSS < 8 MiB", max(rss("hit"), rss("cold")) < 8)]
for what, ok in goals:
    print(f"{'met ' if ok else 'not '}  {what}")
PY
