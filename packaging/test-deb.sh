#!/usr/bin/env bash
# Installs the package built by build-deb.sh on this machine (as root) and uses it as an
# operator would, with no [admin] section: check-config, serve started as the unit starts it
# but without systemd, then the arclist command from root's shell through the local admin
# socket; checks the owners and modes of what the server wrote; then purges the package.
# Usage: packaging/test-deb.sh PATH.deb
set -euo pipefail
deb=$1
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 1; }
config=/etc/arclist/server.toml
list=members@lists.example.org

fail() { echo "test-deb: $*" >&2; exit 1; }

dpkg -i "$deb"
[ -x /usr/bin/arclist ] || fail "/usr/bin/arclist missing"
size=$(stat -c %s /usr/bin/arclist)
echo "/usr/bin/arclist: $size bytes"
[ "$size" -lt $((30 * 1024 * 1024)) ] || fail "the binary is over 30 MB"
# No build-machine paths (build-deb.sh remaps the source tree and cargo's home): a panic
# names `cargo/registry/…`, never /root/.cargo or the folder the package was built in.
source_tree=$(cd "$(dirname "$0")/.." && pwd)
leaks=$(strings /usr/bin/arclist | grep -E -m 3 -e '/root/' -e '/home/' -e "$source_tree/" || true)
[ -z "$leaks" ] || fail "build-machine paths in /usr/bin/arclist: $leaks"
getent passwd arclist >/dev/null || fail "no arclist user"
[ "$(stat -c '%U %a' /var/lib/arclist)" = "arclist 750" ] || fail "/var/lib/arclist: $(stat -c '%U %a' /var/lib/arclist)"
ls /usr/share/man/man1/arclist.1.gz /usr/share/bash-completion/completions/arclist \
   /usr/share/zsh/vendor-completions/_arclist /usr/share/fish/vendor_completions.d/arclist.fish \
   /usr/share/doc/arclist/operator-guide.md /usr/lib/systemd/system/arclist.service >/dev/null

arclist check-config --config "$config"

log=$(mktemp)
runuser -u arclist -- arclist serve --config "$config" 2>"$log" &
serve=$!
stop() { kill -TERM "$serve" 2>/dev/null || true; wait "$serve" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 200); do
    [ -S /var/lib/arclist/admin.sock ] && arclist list ls --config "$config" >/dev/null 2>&1 && break
    kill -0 "$serve" 2>/dev/null || { cat "$log"; fail "serve exited"; }
    sleep 0.1
done

arclist member add "$list" ann@example.com --name Ann --config "$config"
arclist member ls "$list" --config "$config" | grep -q ann@example.com || fail "member not listed"
arclist held ls --config "$config"
arclist report --config "$config" >/dev/null

check() { # path, "owner mode"
    got=$(stat -c '%U %a' "$1")
    [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
    echo "$1: $got"
}
check /var/lib/arclist/arclist.redb "arclist 600"
check /var/lib/arclist/admin.sock "arclist 660"
check /etc/arclist/keys/arc1._domainkey.lists.example.org.pem "arclist 600"
arclist store backup /var/lib/arclist/backup-test.redb --config "$config"
check /var/lib/arclist/backup-test.redb "arclist 600"

stop
trap - EXIT
[ ! -e /var/lib/arclist/admin.sock ] || fail "the socket outlived the server"
grep -q '"local admin socket listening"' "$log" || { cat "$log"; fail "no socket in the log"; }

# An upgrade (the same version again runs the same maintainer scripts) keeps the store.
dpkg -i "$deb"
check /var/lib/arclist/arclist.redb "arclist 600"
check /var/lib/arclist "arclist 750"

dpkg --purge arclist
[ ! -e /var/lib/arclist ] || fail "purge left /var/lib/arclist"
[ ! -e /etc/arclist/keys ] || fail "purge left /etc/arclist/keys"
echo "test-deb: ok"
