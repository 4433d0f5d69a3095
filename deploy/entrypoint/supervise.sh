#!/usr/bin/env bash
# Runs the app and the tcpao-proxy sidecar side by side and keeps their fates
# tied: when either exits, the other is stopped and this script exits non-zero;
# SIGTERM/SIGINT are forwarded to both, SIGHUP to the sidecar alone (a reload).
#
#   supervise.sh [--app-user USER --sidecar-user USER] --app 'SHELL COMMAND' -- SIDECAR_COMMAND [ARG...]
#
# The supervisor itself stays root so it can signal both users' processes.
#
# Exit status: the first child's status when it failed, 1 when it exited 0
# (a sidecar or app that stops on its own is a failure of the pair), and
# 128+N when signal N asked us to stop.
set -uo pipefail

# Above the sidecar's forced shutdown (shutdown_timeout_secs 8, plus 1 s to
# reset what is left) and below `docker stop -t 15`: see docs/deployment-runbook.md.
readonly DEFAULT_STOP_GRACE_SECS=12
readonly STOP_GRACE_SECS="${SUPERVISE_STOP_GRACE_SECS:-$DEFAULT_STOP_GRACE_SECS}"

usage() {
  cat <<USAGE
Usage: supervise.sh [--app-user USER --sidecar-user USER] --app 'SHELL COMMAND' -- SIDECAR_COMMAND [ARG...]

Starts the app (run by bash -c, without TCPAO_KEY in its environment) and then
the sidecar, each as its own unprivileged user when --app-user and
--sidecar-user are given (a name or a uid). Forwards SIGTERM/SIGINT to both and
SIGHUP to the sidecar only (a reload); when either exits, stops the other
(SIGTERM, then SIGKILL after \$SUPERVISE_STOP_GRACE_SECS, default
$DEFAULT_STOP_GRACE_SECS s) and exits non-zero.
USAGE
}

SUPERVISE_DIR="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
readonly SUPERVISE_DIR
LOG_MODULE=supervise
# shellcheck source-path=SCRIPTDIR source=jsonlog.sh
. "$SUPERVISE_DIR/jsonlog.sh"
# shellcheck source-path=SCRIPTDIR source=users.sh
. "$SUPERVISE_DIR/users.sh"

usage_error() {
  log 50 "$1; see supervise.sh --help" code ERR_TCPAO_USAGE
  exit 2
}

app_cmd=""
have_app=0
app_user=""
sidecar_user=""
while (($# > 0)); do
  case "$1" in
    --app)
      (($# >= 2)) || usage_error "--app needs a shell command"
      app_cmd="$2"
      have_app=1
      shift 2
      ;;
    --app-user|--sidecar-user)
      if (($# < 2)) || [[ -z "$2" ]]; then usage_error "$1 needs a user name or uid"; fi
      if [[ "$1" == --app-user ]]; then app_user="$2"; else sidecar_user="$2"; fi
      shift 2
      ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument before --" ;;
  esac
done
if ((!have_app)) || [[ -z "${app_cmd//[[:space:]]/}" ]]; then usage_error "--app needs a non-empty shell command"; fi
(($# > 0)) || usage_error "the sidecar command is missing after --"
[[ "$STOP_GRACE_SECS" =~ ^[0-9]{1,5}$ ]] || usage_error "SUPERVISE_STOP_GRACE_SECS must be a whole number of seconds"
[[ -z "$app_user" && -z "$sidecar_user" ]] || [[ -n "$app_user" && -n "$sidecar_user" ]] ||
  usage_error "--app-user and --sidecar-user go together"

app_prefix=()
sidecar_prefix=()
if [[ -n "$app_user" ]]; then
  resolve_user "$app_user" || usage_error "--app-user: no user $app_user"
  as_user_prefix app_prefix "$RESOLVED_UID" "$RESOLVED_GID" "$RESOLVED_GROUPS" "$RESOLVED_HOME"
  resolve_user "$sidecar_user" || usage_error "--sidecar-user: no user $sidecar_user"
  as_user_prefix sidecar_prefix "$RESOLVED_UID" "$RESOLVED_GID" "$RESOLVED_GROUPS" "$RESOLVED_HOME"
fi

stop_signal=""
sidecar_pid=""
trap 'stop_signal=TERM' TERM
trap 'stop_signal=INT' INT
trap 'forward_reload' HUP

# SIGHUP ends a Node process that has not yet installed its reload handler, so
# it is passed on only once the sidecar catches it (bit 0 of SigCgt).
# shellcheck disable=SC2317 # called from the HUP trap
sidecar_catches_hup() {
  local field mask
  [[ -n "$sidecar_pid" ]] || return 1
  while read -r field mask; do
    [[ "$field" == SigCgt: ]] && (((16#$mask & 1) == 1)) && return 0
  done <"/proc/$sidecar_pid/status"
  return 1
}

# shellcheck disable=SC2317 # the HUP trap
forward_reload() {
  if sidecar_catches_hup 2>/dev/null; then
    kill -s HUP "$sidecar_pid" 2>/dev/null
    log 30 "received SIGHUP; asked the sidecar to reload (the app is not signalled)" signal HUP sidecar_pid "$sidecar_pid"
  else
    log 40 "received SIGHUP before the sidecar could reload; ignored it, send it again once the sidecar is up" signal HUP
  fi
}

# Job control gives each child a process group of its own, so a stop reaches
# everything the app command started, and keeps SIGINT deliverable to them.
set -m
"${app_prefix[@]}" env -u TCPAO_KEY -u TCPAO_KEY_FILE bash -c "$app_cmd" </dev/null &
readonly app_pid=$!
"${sidecar_prefix[@]}" "$@" </dev/null &
sidecar_pid=$!
readonly sidecar_pid
set +m
log 30 "started app and sidecar" app_pid "$app_pid" sidecar_pid "$sidecar_pid" stop_grace_secs "$STOP_GRACE_SECS"

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
  trap 'log 40 "received SIGHUP while stopping; ignored it" signal HUP' HUP
  signal_both "$signal"
  set -m
  (
    trap - TERM INT HUP
    sleep "$STOP_GRACE_SECS"
    log 40 "grace period over; killing what is left" stop_grace_secs "$STOP_GRACE_SECS"
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
