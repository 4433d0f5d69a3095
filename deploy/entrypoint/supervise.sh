#!/usr/bin/env bash
# Runs the app and the tcpao-proxy sidecar side by side and keeps their fates
# tied: when either exits, the other is stopped and this script exits non-zero;
# SIGTERM/SIGINT are forwarded to both.
#
#   supervise.sh --app 'SHELL COMMAND' -- SIDECAR_COMMAND [ARG...]
#
# Exit status: the first child's status when it failed, 1 when it exited 0
# (a sidecar or app that stops on its own is a failure of the pair), and
# 128+N when signal N asked us to stop.
set -uo pipefail

readonly STOP_GRACE_SECS="${SUPERVISE_STOP_GRACE_SECS:-10}"

usage() {
  cat <<USAGE
Usage: supervise.sh --app 'SHELL COMMAND' -- SIDECAR_COMMAND [ARG...]

Starts the app (run by bash -c, without TCPAO_KEY in its environment) and then
the sidecar, forwards SIGTERM/SIGINT to both, and when either exits stops the
other (SIGTERM, then SIGKILL after \$SUPERVISE_STOP_GRACE_SECS, default 10 s)
and exits non-zero.
USAGE
}

LOG_MODULE=supervise
# shellcheck source-path=SCRIPTDIR source=jsonlog.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/jsonlog.sh"

usage_error() {
  log 50 "$1; see supervise.sh --help" code ERR_TCPAO_USAGE
  exit 2
}

app_cmd=""
have_app=0
while (($# > 0)); do
  case "$1" in
    --app)
      (($# >= 2)) || usage_error "--app needs a shell command"
      app_cmd="$2"
      have_app=1
      shift 2
      ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument before --" ;;
  esac
done
if ((!have_app)) || [[ -z "${app_cmd//[[:space:]]/}" ]]; then usage_error "--app needs a non-empty shell command"; fi
(($# > 0)) || usage_error "the sidecar command is missing after --"
[[ "$STOP_GRACE_SECS" =~ ^[0-9]+$ ]] || usage_error "SUPERVISE_STOP_GRACE_SECS must be a whole number of seconds"

stop_signal=""
trap 'stop_signal=TERM' TERM
trap 'stop_signal=INT' INT

# Job control gives each child a process group of its own, so a stop reaches
# everything the app command started, and keeps SIGINT deliverable to them.
set -m
env -u TCPAO_KEY -u TCPAO_KEY_FILE bash -c "$app_cmd" </dev/null &
readonly app_pid=$!
"$@" </dev/null &
readonly sidecar_pid=$!
set +m
log 30 "started app and sidecar" app_pid "$app_pid" sidecar_pid "$sidecar_pid"

signal_both() {
  local signal="$1" pid
  for pid in "$app_pid" "$sidecar_pid"; do
    kill -s "$signal" -- "-$pid" 2>/dev/null || kill -s "$signal" "$pid" 2>/dev/null || true
  done
}

# Waits until the child is gone, even when a trapped signal interrupts wait.
reap() {
  local pid="$1" status
  while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || return "$status"
  done
}

# Sends SIGTERM (or the given signal) to both, escalates to SIGKILL after the
# grace period or on a second signal, and waits for both to be gone.
stop_both() {
  local signal="$1" killer
  signal_both "$signal"
  set -m
  (
    trap - TERM INT
    sleep "$STOP_GRACE_SECS"
    kill -s KILL -- "-$app_pid" "-$sidecar_pid" 2>/dev/null
  ) </dev/null &
  killer=$!
  set +m
  trap 'signal_both KILL' TERM INT
  reap "$app_pid"
  app_status=$?
  reap "$sidecar_pid"
  sidecar_status=$?
  kill -s TERM -- "-$killer" 2>/dev/null
  wait "$killer" 2>/dev/null
}

exited_pid=""
while :; do
  exited_pid=""
  wait -n -p exited_pid "$app_pid" "$sidecar_pid"
  status=$?
  # wait -n -p leaves the variable unset when a trapped signal interrupted it.
  exited_pid="${exited_pid:-}"
  [[ -n "$exited_pid" || -n "$stop_signal" ]] && break
done

app_status=""
sidecar_status=""
if [[ -n "$exited_pid" ]]; then
  if [[ "$exited_pid" == "$app_pid" ]]; then first=app; other=sidecar; else first=sidecar; other=app; fi
  log 50 "$first exited; stopping the $other" process "$first" status "$status"
  stop_both TERM
  log 30 "both processes stopped" app_status "$app_status" sidecar_status "$sidecar_status"
  if ((status == 0)); then exit 1; fi
  exit "$status"
fi

log 30 "received SIG$stop_signal; forwarding it to the app and the sidecar" signal "$stop_signal"
stop_both "$stop_signal"
log 30 "both processes stopped" app_status "$app_status" sidecar_status "$sidecar_status"
if [[ "$stop_signal" == TERM ]]; then exit 143; fi
exit 130
