#!/usr/bin/env bash
# Drops TCP to the given local ports unless it arrives on loopback. gobmp (and
# gobgpd's defaults) listen on every address; run this in the node so the only
# way to the app from the wire is through the TCP-AO terminator.
# Needs nft and CAP_NET_ADMIN in the container's network namespace.
set -euo pipefail

usage() {
  printf '%s\n' \
    'Usage: guard-local-ports.sh PORT [PORT...]' \
    '' \
    'Installs nftables table "inet tcpao_guard" (replacing an earlier one) that drops' \
    'TCP to each PORT arriving on any interface other than lo.'
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  '') usage >&2; exit 2 ;;
esac
for port in "$@"; do
  if [[ ! "$port" =~ ^[0-9]{1,5}$ ]] || ((port < 1 || port > 65535)); then
    echo "guard-local-ports.sh: ERR_TCPAO_USAGE: each PORT must be an integer from 1 to 65535" >&2
    exit 2
  fi
done
ports="$(IFS=,; printf '%s' "$*")"

nft delete table inet tcpao_guard 2>/dev/null || true
nft -f - <<RULES
table inet tcpao_guard {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname != "lo" tcp dport { $ports } drop
  }
}
RULES
echo "guard-local-ports.sh: TCP to port(s) $ports is dropped unless it arrives on lo"
