#!/usr/bin/env bash
# Host preflight (deployment spec, section 12): runs `tcpao-proxy doctor` with
# this script's arguments and exits with its status: 0 nothing fails, 1 a
# check fails, 2 bad arguments. Everything else lives in the CLI.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

usage() {
  cat <<'USAGE'
Usage: scripts/doctor.sh [--config FILE] [--mode initiator|terminator] [--json]

Runs `tcpao-proxy doctor`: checks that this host (and, with --config, that
config) can run the TCP-AO sidecar. `scripts/doctor.sh --help` shows the
doctor's own help; docs/doctor.md describes every check.
USAGE
}

# The checkout's build when there is one, else an installed tcpao-proxy.
if [[ -f "$REPO_ROOT/dist/src/main.js" ]]; then
  exec node "$REPO_ROOT/bin/tcpao-proxy" doctor "$@"
elif command -v tcpao-proxy >/dev/null 2>&1; then
  exec tcpao-proxy doctor "$@"
fi
usage >&2
echo "doctor.sh: tcpao-proxy is not built here ($REPO_ROOT/dist is missing) nor on PATH; run \`npm run build\` first" >&2
exit 2
