#!/usr/bin/env bash
# Entrypoint of the gobmp-tls-tcpao image: the terminator accepts TCP-AO on
# LISTEN_AO and relays each authenticated session in plain TCP to gobmp at
# FORWARD_PLAIN. Required: PEER_IP, and TCPAO_KEY or TCPAO_KEY_FILE.
set -euo pipefail

readonly ROLE=terminator
# gobmp listens on every address of its --source-port and of its debug port
# (56767); the entrypoint drops TCP to both unless it arrives on lo, so the
# only way to gobmp from outside is the TCP-AO listener.
readonly DEFAULT_APP_CMD='gobmp --source-port=11019 --dump=console'
readonly DEFAULT_GUARD_PORTS='11019 56767'

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_role "$@"
