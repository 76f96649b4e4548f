#!/usr/bin/env bash
# bench/hit-instructions.sh BIN STS OUTDIR: the cache-hit instructions of
# the helper BIN (callgrind, whole process), with bench/run.sh's hit entry
# in a config of 1 entry and of 1000 entries, against the example STS at
# STS (target/release/examples/sts). Instruction counts do not depend on
# the machine's load, so two builds compare exactly on a busy machine:
#
#   bench/hit-instructions.sh old/docker-credential-exchange target/release/examples/sts /tmp/old
#   bench/hit-instructions.sh target/release/docker-credential-exchange target/release/examples/sts /tmp/new
set -euo pipefail
BIN=$1 STS=$2 OUT=$3
mkdir -p "$OUT"; W=$(mktemp -d /tmp/dce-hit.XXXXXX)
mkfifo "$W/in"
"$STS" --json --until-stdin-closes <"$W/in" >"$W/sts.json" 2>/dev/null &
exec 3>"$W/in"
for _ in $(seq 100); do [ -s "$W/sts.json" ] && break; sleep 0.05; done
URL=$(python3 -c "import json;print(json.load(open('$W/sts.json'))['url'])")
SUBJ=$(python3 -c "import json;print(json.load(open('$W/sts.json'))['subject_token'])")
python3 - "$W" "$URL" <<'PY'
import json, sys
w, url = sys.argv[1], sys.argv[2]
hit = {"token_endpoint": url, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
       "subject_token": {"source": "env", "var": "SUBJ"}}
json.dump({"registries": {"hit.bench.test": hit}}, open(f"{w}/c1.json", "w"))
regs = {"hit.bench.test": hit}
for i in range(1, 1000):
    regs[f"r{i:05d}.bench.test"] = {"token_endpoint": url}
json.dump({"registries": regs}, open(f"{w}/c1000.json", "w"), separators=(",", ":"))
PY
export SUBJ="$SUBJ" DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR="$W/cache" HOME="$W" DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR="$W/data" DOCKER_CREDENTIAL_EXCHANGE_STORE=file
echo hit.bench.test >"$W/req"
# The helper indexes its config only once the file's times are 3 s old
# (src/config/index): a config read at once would be measured unindexed.
sleep 4
for c in c1 c1000; do
  DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/$c.json" "$BIN" get <"$W/req" >/dev/null
  DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$W/$c.json" valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$c" "$BIN" get <"$W/req" >/dev/null 2>"$OUT/cg.$c.log"
  echo "$c $(grep -E '^(summary|totals):' "$OUT/cg.$c" | head -n1 | awk '{print $2}')"
done
exec 3>&-
rm -rf "$W"
