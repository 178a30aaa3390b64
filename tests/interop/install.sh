#!/usr/bin/env bash
# Installs the implementations the tests cross-check arclist against: dkimpy (ARC and DKIM)
# from PyPI, Debian's postsrsd (SRS) and postfix (a relay in front of arclist, sending
# XFORWARD), curl (the HTTP client the admin API and RFC 8058 docs show, which the tests
# run as written), chromium (the headless browser the web pages are tested in) and postgresql
# (the shared store; the tests start a private cluster of their own), fail2ban (whose
# fail2ban-regex checks the console's documented filter against real log lines) and rspamd
# (the spam filter asked before 250; the tests start private instances of their own). Safe to run
# again; needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt
if ! command -v curl >/dev/null 2>&1 || ! command -v fail2ban-regex >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 || ! [ -x /usr/bin/rspamd ] || ! [ -x /usr/sbin/postfix ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { ! command -v postsrsd >/dev/null 2>&1 && ! [ -x /usr/sbin/postsrsd ]; }; then
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  # The package's service is not started in containers (policy-rc.d); the tests start their own.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postsrsd postfix curl chromium postgresql fail2ban rspamd >/dev/null
fi
# The DKIM2 peer: Stalwart's mail-auth 0.15.1 (draft -08) behind a small CLI, a Cargo project
# of its own so its dependencies stay out of arclist's build. mail-parser 1.0 declares
# rust-version 1.98 but builds on 1.95, hence --ignore-rust-version. The engine's
# tests/dkim2_chain.rs runs it from tests/interop/dkim2-peer/target/release/dkim2-peer.
if command -v cargo >/dev/null 2>&1; then
  (cd dkim2-peer && CARGO_TARGET_DIR="$PWD/target" flock /tmp/arclist-cargo.lock \
    cargo build --release --ignore-rust-version --quiet)
fi
