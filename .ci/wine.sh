#!/usr/bin/env bash
# The Windows build of the helper, tested on Linux under Wine: cross-builds
# the binary and its suites for x86_64-pc-windows-gnu, runs the binary's
# protocol round trip (file store and Credential Manager, a 12 KB secret),
# then keyring_windows, windows and every suite in .ci/portable-suites.sh,
# each program through .ci/wine/run (the cargo runner: a private Wine
# prefix in the target directory, made on first use).
#
#   .ci/wine.sh                      # everything, as .ci/run does
#   .ci/wine.sh --test protocol      # only these cargo test arguments
#
# Needs wine64 (8.0 or later), gcc-mingw-w64-x86-64 and the rustup target
# x86_64-pc-windows-gnu. docs/platforms.md says what Wine can and cannot
# show about Windows.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PWD/.ci/wine/run"

for tool in /usr/lib/wine/wine64 x86_64-w64-mingw32-gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "wine.sh: $tool is missing; install Debian's wine64 and gcc-mingw-w64-x86-64" >&2
    exit 1
  fi
done

if (($#)); then
  exec cargo test --locked --target "$target" "$@"
fi

portable_suites=()
# shellcheck source=.ci/portable-suites.sh disable=SC1091
source .ci/portable-suites.sh

started=$SECONDS
echo "wine.sh: building the helper and its suites for $target"
cargo test --locked --target "$target" --no-run --test keyring_windows --test windows "${portable_suites[@]}"
built=$SECONDS

# The binary itself, as Docker runs it: store, get, list and erase through
# stdin and stdout, on the file store and on Credential Manager, with a
# secret far over Credential Manager's 2560-byte blob limit.
target_dir="$(cargo metadata --locked --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
exe="$target_dir/$target/debug/docker-credential-exchange.exe"
scratch="$(mktemp -d -t dce-wine.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
helper() {
  env DOCKER_CREDENTIAL_EXCHANGE_CONFIG="$scratch/config.json" \
    DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR="$scratch/cache" \
    DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR="$scratch/data-$store" \
    DOCKER_CREDENTIAL_EXCHANGE_STORE="$store" \
    .ci/wine/run "$exe" "$@"
}
secret="$(head -c 9000 /dev/urandom | base64 -w0)"
for store in file keyring; do
  registry="round-trip-$$-$RANDOM.dce-test.invalid"
  printf '{"ServerURL":"https://%s/","Username":"alice","Secret":"%s"}' "$registry" "$secret" |
    helper store
  # get answers the server URL as asked, like docker-credential-helpers.
  got="$(printf '%s' "$registry" | helper get)"
  want="$(printf '{"ServerURL":"%s","Username":"alice","Secret":"%s"}' "$registry" "$secret")"
  if [[ "$got" != "$want" ]]; then
    echo "wine.sh: get on the $store store did not return what store stored (${#got} bytes)" >&2
    exit 1
  fi
  if ! helper list </dev/null | grep -qF "\"https://$registry/\":\"alice\""; then
    echo "wine.sh: list on the $store store does not show $registry" >&2
    exit 1
  fi
  printf '%s' "$registry" | helper erase
  gone="$(printf '%s' "$registry" | helper get || true)"
  if [[ "$gone" != "credentials not found in native keychain" ]]; then
    echo "wine.sh: after erase, get on the $store store answered: $gone" >&2
    exit 1
  fi
  echo "wine.sh: protocol round trip on the $store store (a ${#secret}-byte secret): ok"
done
smoked=$SECONDS

# As the windows job of ci.yml runs them: the keyring suite one test at a
# time, then the portable suites. --no-fail-fast: every failing suite shows.
# A test that Wine cannot pass as Windows would checks what Wine does
# instead and prints an "UNDER WINE:" line (docs/platforms.md lists them);
# they are repeated at the end so that none goes unseen.
log="$scratch/suites.log"
cargo test --locked --target "$target" --no-fail-fast --test keyring_windows -- --test-threads=1 2>&1 |
  tee "$log"
cargo test --locked --target "$target" --no-fail-fast --test windows "${portable_suites[@]}" 2>&1 |
  tee -a "$log"
echo "wine.sh: build $((built - started))s, round trip $((smoked - built))s, suites $((SECONDS - smoked))s"
if grep -q "^UNDER WINE:" "$log"; then
  echo "wine.sh: checked Wine's behaviour instead of Windows' (see docs/platforms.md):"
  grep "^UNDER WINE:" "$log" | sort -u | sed 's/^/  /'
fi
