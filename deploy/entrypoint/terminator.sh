#!/usr/bin/env bash
# Entrypoint of the gobmp-tls-tcpao image: the terminator accepts TCP-AO on
# LISTEN_AO and relays each authenticated session in plain TCP to gobmp at
# FORWARD_PLAIN. Required: PEER_IP, and TCPAO_KEY or TCPAO_KEY_FILE.
set -euo pipefail

readonly ROLE=terminator
# gobmp listens on every address of its --source-port; keep that port off the
# wire with guard-local-ports.sh (see docs/deployment-runbook.md).
readonly DEFAULT_APP_CMD='gobmp --source-port=11019 --dump=console'

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_role "$@"
