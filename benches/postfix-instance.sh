#!/usr/bin/env bash
# Starts a private Postfix instance on 127.0.0.1:PORT whose smtpd accepts mail for
# lists.arclist.test into its own queue under DIR (local delivery deferred, so the queue only
# grows): the peer the SMTP ingest bench measures arclist against. Needs root and Debian's
# postfix package. Usage: postfix-instance.sh start|stop DIR PORT [TRANSPORT_MAP]
#
# With TRANSPORT_MAP (a texthash file of `domain smtp:[ip]:port` lines), the instance also
# relays mail for those domains from loopback clients, takes up to a million recipients per
# message and honours XVERP: the peer for the fan-out bench. Lines in $POSTFIX_EXTRA are added
# to main.cf (the XFORWARD test: `lmtp_send_xforward_command = yes`).
set -euo pipefail
action=$1 dir=$2 port=${3:-2526} transport=${4:-}
conf=$dir/etc
if [ "$action" = stop ]; then
  postfix -c "$conf" stop >/dev/null 2>&1 || true
  exit 0
fi
mkdir -p "$conf" "$dir/spool" "$dir/data"
cp /etc/postfix/master.cf "$conf/master.cf"
# Only our smtpd, on loopback, on PORT.
sed -i "s/^smtp      inet/127.0.0.1:$port inet/" "$conf/master.cf"
cat > "$conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.arclist.test
mydestination = lists.arclist.test
local_recipient_maps =
defer_transports = local
# Measure ingest, not flow control: without this, cleanup waits for the queue manager.
in_flow_delay = 0
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 200
default_process_limit = 200
maillog_file = /dev/stdout
alias_maps =
alias_database =
CONF
if [ -n "$transport" ]; then
  cat >> "$conf/main.cf" <<CONF
transport_maps = texthash:$transport
relay_domains = texthash:$transport
smtpd_recipient_limit = 1000000
smtpd_authorized_verp_clients = 127.0.0.0/8
CONF
fi
if [ -n "${POSTFIX_EXTRA:-}" ]; then
  printf '%s\n' "$POSTFIX_EXTRA" >> "$conf/main.cf"
fi
chown root:root "$dir" "$conf" "$dir/spool"
chown postfix:postfix "$dir/data"
postfix -c "$conf" set-permissions >/dev/null 2>&1 || true
# The first check creates what is missing; the second must pass.
postfix -c "$conf" check >/dev/null 2>&1 || postfix -c "$conf" check >&2
# start-fg with logs to stdout works without syslog (containers, CI); keep it in the background.
nohup postfix -c "$conf" start-fg > "$dir/maillog" 2>&1 &
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && exit 0
  sleep 0.1
done
echo "postfix did not start listening on 127.0.0.1:$port" >&2
exit 1
