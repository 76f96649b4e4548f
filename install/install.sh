#!/bin/sh
# Installs docker-credential-exchange as PREFIX/bin/docker-credential-exchange
# (PREFIX defaults to ~/.local): built from this checkout with `cargo install
# --locked`, or with --binary a binary you already have (a release download;
# no Rust needed). Then its man page in PREFIX/share/man/man1 and bash, zsh
# and fish completions under PREFIX/share, and says how to point Docker at
# it, or does so with --configure.
#
#   install/install.sh                          # build, into ~/.local/bin
#   install/install.sh --prefix /usr/local      # into /usr/local/bin
#   install/install.sh --binary ./docker-credential-exchange   # no build
#   install/install.sh --configure registry.example.com ghcr.io
#   install/install.sh --configure --store      # credsStore: every registry
#
# Everything after --configure is passed to `docker-credential-exchange
# configure-docker`; with no registries it adds every exchange registry of
# the helper's config. Environment: PREFIX, CARGO, CARGO_TARGET_DIR.
set -eu

NAME=docker-credential-exchange

die() {
    echo "install.sh: $*" >&2
    exit 1
}

usage() {
    # The comment block at the top of this file, without its "# ".
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

prefix=${PREFIX:-}
binary=
configure=0
while [ $# -gt 0 ]; do
    case $1 in
        --prefix)
            [ $# -ge 2 ] || die "--prefix needs a directory"
            prefix=$2
            shift 2
            ;;
        --prefix=*)
            prefix=${1#--prefix=}
            shift
            ;;
        --binary)
            [ $# -ge 2 ] || die "--binary needs the path of a docker-credential-exchange binary"
            binary=$2
            shift 2
            ;;
        --binary=*)
            binary=${1#--binary=}
            shift
            ;;
        --configure)
            configure=1
            shift
            break
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            die "unknown argument: $1 (see --help)"
            ;;
    esac
done

if [ -z "$prefix" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set; use --prefix DIR"
    prefix=$HOME/.local
fi

# In a release archive the binary sits beside this script: install it.
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$binary" ] && [ -f "$here/$NAME" ] && [ ! -f "$here/../Cargo.lock" ]; then
    binary=$here/$NAME
fi

bin=$prefix/bin/$NAME
if [ -n "$binary" ]; then
    [ -f "$binary" ] || die "--binary $binary: no such file"
    # Run it before installing anything: a binary for another system (an
    # aarch64 download on x86_64, a macOS one on Linux) stops here.
    "$binary" version >/dev/null 2>&1 ||
        die "--binary $binary does not run here (a build for another system or architecture?)"
    mkdir -p "$prefix/bin"
    # Copied beside the target, then renamed over it: a helper that Docker
    # runs at this moment is never a half-written file.
    if ! { cp "$binary" "$bin.tmp.$$" && chmod 0755 "$bin.tmp.$$" && mv -f "$bin.tmp.$$" "$bin"; }; then
        rm -f "$bin.tmp.$$"
        die "could not install $binary as $bin"
    fi
else
    cargo=${CARGO:-cargo}
    command -v "$cargo" >/dev/null 2>&1 ||
        die "cargo not found; install Rust from https://rustup.rs, or give a prebuilt binary with --binary PATH"

    root=$(cd "$(dirname "$0")/.." && pwd)
    [ -f "$root/Cargo.lock" ] ||
        die "$root/Cargo.lock is missing; --locked needs it (outside a checkout, use --binary PATH)"

    echo "building $NAME from $root into $prefix/bin" >&2
    "$cargo" install --path "$root" --locked --root "$prefix" --force
fi

"$bin" version >/dev/null || die "the installed $bin does not run"
echo "installed $bin ($("$bin" version))"

# The man page and completions come from the installed binary itself, so
# they describe exactly the options it has. These are the directories that
# man, bash-completion and fish search for a prefix whose bin is on PATH.
share=$prefix/share
generate() { # FILE ARGS...: writes the binary's `generate ARGS` output to FILE
    file=$1
    shift
    mkdir -p "$(dirname "$file")"
    if ! "$bin" generate "$@" >"$file.tmp" || ! mv "$file.tmp" "$file"; then
        die "could not write $file"
    fi
}
generate "$share/man/man1/$NAME.1" man
generate "$share/bash-completion/completions/$NAME" completions bash
generate "$share/zsh/site-functions/_$NAME" completions zsh
generate "$share/fish/vendor_completions.d/$NAME.fish" completions fish
echo "installed the man page ($share/man/man1/$NAME.1) and bash, zsh and fish completions"
echo "  (zsh: add $share/zsh/site-functions to fpath before compinit if it is not there)"

case ":${PATH:-}:" in
    *":$prefix/bin:"*) ;;
    *)
        echo
        echo "$prefix/bin is not on your PATH; Docker finds the helper there. Add it, e.g.:"
        echo "  export PATH=\"$prefix/bin:\$PATH\""
        ;;
esac

if [ "$configure" -eq 1 ]; then
    echo
    "$bin" configure-docker "$@"
    exit 0
fi

cat <<MSG

Next, point Docker at the helper in ~/.docker/config.json (or \$DOCKER_CONFIG/config.json).
For chosen registries (credHelpers; Docker runs docker-credential-exchange for these only):
  $NAME configure-docker registry.example.com
which adds
  "credHelpers": { "registry.example.com": "exchange" }
Or for every registry (credsStore; ordinary passwords then go to the OS keyring):
  $NAME configure-docker --store
which sets
  "credsStore": "exchange"
Then check the setup with:
  $NAME doctor
MSG
