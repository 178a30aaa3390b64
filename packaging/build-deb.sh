#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (`cargo install cargo-deb --locked`): the release
# binary once, the manual pages and shell completions made by that binary
# (`arclist generate`), the systemd unit with the package's paths, then the .deb.
# Prints the path of the package. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}

# No build-machine paths in the binary (the panic locations of dependencies, which a panic
# message prints): the source tree is written as `arclist`, cargo's home as `cargo`.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$PWD=arclist --remap-path-prefix=$cargo_home=cargo"
cargo build --release --locked --bin arclist
binary="$target/release/arclist"

# cargo-deb takes assets from ./target/… (it maps only target/release to CARGO_TARGET_DIR).
staging=target/deb-staging
rm -rf "$staging"
mkdir -p "$staging/man" "$staging/completions"
"$binary" generate man "$staging/man"
gzip -9n "$staging"/man/*.1
"$binary" generate completions "$staging/completions"
# The unit of dist/ runs /usr/local/bin/arclist (an install from source); the package's
# binary is /usr/bin/arclist.
sed -e 's#/usr/local/bin/arclist#/usr/bin/arclist#g' \
    -e 's#/usr/local/share/doc/arclist#/usr/share/doc/arclist#g' \
    -e '/^# systemd unit for arclist/,/^# See docs/d' \
    dist/arclist.service > "$staging/arclist.service"

cargo deb --no-build --locked --output "$target/debian/" >/dev/null
ls -1 "$target"/debian/arclist_*.deb | tail -n 1
