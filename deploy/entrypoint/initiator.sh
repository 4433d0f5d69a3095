#!/usr/bin/env bash
# Entrypoint of the gobgp-stunnel-tcpao image: GoBGP sends BMP in plain TCP to
# the initiator's LISTEN_PLAIN, and the initiator carries it over TCP-AO to
# REMOTE_AO. Required: REMOTE_AO, and TCPAO_KEY or TCPAO_KEY_FILE.
set -euo pipefail

readonly ROLE=initiator
# The gobgpd config in the image points its BMP server at 127.0.0.1:5000; the
# API stays on loopback so nothing but the wire leg is reachable from outside.
readonly DEFAULT_APP_CMD='gobgpd -f /etc/gobgp/gobgpd.toml --api-hosts=127.0.0.1:50051'
# The initiator's app only dials out (to the sidecar on loopback): no port to guard.
readonly DEFAULT_GUARD_PORTS=''

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_role "$@"
