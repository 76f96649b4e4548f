#!/bin/sh
# Builds the .deb with cargo-deb ([package.metadata.deb] in Cargo.toml): a
# release build, then the man page and bash/zsh/fish completions generated
# by that very binary (its hidden `generate` subcommand) into
# TARGET/release/assets, then the package. Prints the .deb's path.
#
#   install/build-deb.sh          # TARGET is $CARGO_TARGET_DIR or ./target
#
# Needs cargo-deb: cargo install --locked cargo-deb --version 3.8.0
set -eu

NAME=docker-credential-exchange

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case $target in
    /*) ;;
    *) target=$root/$target ;;
esac

cargo build --locked --release >&2

release=$target/release
assets=$release/assets
mkdir -p "$assets"
# -n: no name or time stamp in the gzip header, so the same man page makes
# the same bytes.
"$release/$NAME" generate man | gzip -9n >"$assets/$NAME.1.gz"
"$release/$NAME" generate completions bash >"$assets/$NAME.bash"
"$release/$NAME" generate completions zsh >"$assets/_$NAME"
"$release/$NAME" generate completions fish >"$assets/$NAME.fish"

out=$target/debian
rm -f "$out/${NAME}_"*.deb
cargo deb --locked --no-build --output "$out" >&2
ls "$out/${NAME}_"*.deb
