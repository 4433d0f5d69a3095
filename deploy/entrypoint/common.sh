# shellcheck shell=bash
# Shared startup contract of the two role entrypoints (deployment spec, section 7).
# Sourced by initiator.sh and terminator.sh after they set ROLE and DEFAULT_APP_CMD.
#
#   1. validate the environment (a key source, the two users, the role's endpoints);
#   2. move the key into a file only the sidecar's user can read, on a tmpfs,
#      and out of every environment from here on;
#   3. render $TCPAO_CONFIG_PATH from $TCPAO_TEMPLATE_DIR/$ROLE.toml.tmpl, pointing
#      key_source at that file, and check the drain chain against the supervisor;
#   4. run `tcpao-proxy doctor --config ...` as the sidecar's user and refuse to
#      start when a check fails;
#   4b. (terminator) drop TCP to the app's plain ports unless it arrives on lo,
#      and refuse to start when that cannot be done (no CAP_NET_ADMIN): an app
#      that listens on every address must not be a way around TCP-AO;
#   5. exec tini (the container's PID 1 from then on) and supervise.sh with an
#      environment without the key: the app ($APP_CMD) and the sidecar, each as
#      its own user, tied together.
#
# This script must be the container's first process: whatever runs before it
# keeps TCPAO_KEY in its /proc/PID/environ for its whole life, and a running
# process cannot drop it. Paths can be moved with environment variables (so the
# entrypoints run unchanged outside the image); nothing here can turn TCP-AO,
# the doctor or the separation of users off.

ENTRYPOINT_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
readonly ENTRYPOINT_DIR
# The entrypoints live in <home>/deploy/entrypoint, in the image and in the repo.
TCPAO_PROXY_HOME="$(cd "$ENTRYPOINT_DIR/../.." && pwd)"
readonly TCPAO_PROXY_HOME

readonly TCPAO_PROXY_BIN="${TCPAO_PROXY_BIN:-/usr/local/bin/tcpao-proxy}"
readonly TCPAO_TEMPLATE_DIR="${TCPAO_TEMPLATE_DIR:-/etc/tcpao-proxy}"
readonly TCPAO_CONFIG_PATH="${TCPAO_CONFIG_PATH:-/etc/tcpao-proxy/config.toml}"
# /dev/shm is a tmpfs in every Docker container; a container cannot mount one itself.
readonly TCPAO_RUNTIME_DIR="${TCPAO_RUNTIME_DIR:-/dev/shm/tcpao-proxy}"
readonly STAGED_KEY_FILE="$TCPAO_RUNTIME_DIR/key"
# Empty: no init, supervise.sh is exec'd directly.
readonly TCPAO_INIT="${TCPAO_INIT-/usr/bin/tini}"
readonly RENDER_CONFIG="$TCPAO_PROXY_HOME/scripts/render-config"
readonly SUPERVISE="$ENTRYPOINT_DIR/supervise.sh"
readonly TCPAO_PORT_GUARD="${TCPAO_PORT_GUARD:-$ENTRYPOINT_DIR/guard-local-ports.sh}"

LOG_MODULE=entrypoint
LOG_ROLE="$ROLE"
# shellcheck source-path=SCRIPTDIR source=jsonlog.sh
. "$ENTRYPOINT_DIR/jsonlog.sh"
# shellcheck source-path=SCRIPTDIR source=users.sh
. "$ENTRYPOINT_DIR/users.sh"
readonly TCPAO_APP_USER="${TCPAO_APP_USER:-$DEFAULT_APP_USER}"
readonly TCPAO_SIDECAR_USER="${TCPAO_SIDECAR_USER:-$DEFAULT_SIDECAR_USER}"

# Bad operator input: one coded line, exit status 2.
refuse() {
  log 50 "$2" code "$1"
  exit 2
}

entrypoint_usage() {
  cat <<USAGE
Usage: $ROLE.sh   (takes no arguments; configure it with environment variables)

Key (exactly one):   TCPAO_KEY (the shared secret) or TCPAO_KEY_FILE (absolute path of a file holding it)
Role settings:       see deploy/config/$ROLE.toml.tmpl and docs/deployment-runbook.md
App:                 APP_CMD (default: $DEFAULT_APP_CMD)
Users:               TCPAO_APP_USER ($TCPAO_APP_USER), TCPAO_SIDECAR_USER ($TCPAO_SIDECAR_USER):
                     two different non-root names or uids; the entrypoint itself starts as root
Stop:                SUPERVISE_STOP_GRACE_SECS (default 12; above the config's shutdown_timeout_secs + 1)
Paths:               TCPAO_PROXY_BIN ($TCPAO_PROXY_BIN), TCPAO_TEMPLATE_DIR ($TCPAO_TEMPLATE_DIR),
                     TCPAO_CONFIG_PATH ($TCPAO_CONFIG_PATH), TCPAO_RUNTIME_DIR ($TCPAO_RUNTIME_DIR, on a tmpfs),
                     TCPAO_INIT ($TCPAO_INIT; empty for none)
USAGE
}

# The users as "uid gid groups-option home", checked: two different non-root users.
APP_UID="" APP_GID="" APP_GROUPS="" APP_HOME=""
SIDECAR_UID="" SIDECAR_GID="" SIDECAR_GROUPS="" SIDECAR_HOME=""
validate_users() {
  ((EUID == 0)) || refuse ERR_TCPAO_USAGE "the entrypoint runs as uid $EUID, not root, so it cannot run the app and the sidecar as two separate users; start the container as root (no --user) and set TCPAO_APP_USER and TCPAO_SIDECAR_USER instead"
  resolve_user "$TCPAO_APP_USER" ||
    refuse ERR_TCPAO_USAGE "TCPAO_APP_USER names no user ($TCPAO_APP_USER); set a user of the image or a numeric uid"
  APP_UID="$RESOLVED_UID" APP_GID="$RESOLVED_GID" APP_GROUPS="$RESOLVED_GROUPS" APP_HOME="$RESOLVED_HOME"
  resolve_user "$TCPAO_SIDECAR_USER" ||
    refuse ERR_TCPAO_USAGE "TCPAO_SIDECAR_USER names no user ($TCPAO_SIDECAR_USER); set a user of the image or a numeric uid"
  SIDECAR_UID="$RESOLVED_UID" SIDECAR_GID="$RESOLVED_GID" SIDECAR_GROUPS="$RESOLVED_GROUPS" SIDECAR_HOME="$RESOLVED_HOME"
  ((APP_UID != 0 && SIDECAR_UID != 0)) ||
    refuse ERR_TCPAO_USAGE "TCPAO_APP_USER and TCPAO_SIDECAR_USER must not be root (uid 0); root could read the key from any process"
  ((APP_UID != SIDECAR_UID)) ||
    refuse ERR_TCPAO_USAGE "TCPAO_APP_USER and TCPAO_SIDECAR_USER are the same uid ($APP_UID); give the app and the sidecar two different users"
}

as_app() {
  local prefix=()
  as_user_prefix prefix "$APP_UID" "$APP_GID" "$APP_GROUPS" "$APP_HOME"
  "${prefix[@]}" "$@"
}

as_sidecar() {
  local prefix=()
  as_user_prefix prefix "$SIDECAR_UID" "$SIDECAR_GID" "$SIDECAR_GROUPS" "$SIDECAR_HOME"
  "${prefix[@]}" "$@"
}

validate_key_source() {
  # Only presence is tested here; the value is only ever copied by stage_key.
  local has_key=0 has_file=0
  [[ -n "${TCPAO_KEY:-}" ]] && has_key=1
  [[ -n "${TCPAO_KEY_FILE:-}" ]] && has_file=1
  if ((has_key && has_file)); then
    refuse ERR_TCPAO_KEY_SOURCE "both TCPAO_KEY and TCPAO_KEY_FILE are set; set only one"
  fi
  if ((!has_key && !has_file)); then
    refuse ERR_TCPAO_KEY_SOURCE "neither TCPAO_KEY nor TCPAO_KEY_FILE is set; pass the shared key at run time (e.g. docker run -e TCPAO_KEY), never in the image"
  fi
  if ((has_file)); then
    [[ "$TCPAO_KEY_FILE" == /* && -f "$TCPAO_KEY_FILE" && -r "$TCPAO_KEY_FILE" ]] ||
      refuse ERR_TCPAO_KEY_SOURCE "TCPAO_KEY_FILE names no readable file (an absolute path is needed); mount the key file there"
    # The mounted file is the other way in: the app's user must not be able to open it.
    if as_app test -r "$TCPAO_KEY_FILE"; then
      refuse ERR_TCPAO_KEY_SOURCE "TCPAO_KEY_FILE ($TCPAO_KEY_FILE) is readable by the app's user ($TCPAO_APP_USER); mount it readable by root only, e.g. a 0400 or 0600 file owned by root"
    fi
  fi
}

# An init or shell in front of this script (docker run --init, the old
# ENTRYPOINT ["tini", "--", ...]) was exec'd with TCPAO_KEY and shows it in its
# /proc/PID/environ for as long as it runs. Only the variable's name is compared.
refuse_parent_with_key() {
  local entry comm=""
  ((PPID > 0)) && [[ -r "/proc/$PPID/environ" ]] || return 0
  while IFS= read -r -d '' entry; do
    if [[ "$entry" == TCPAO_KEY=* ]]; then
      read -r comm <"/proc/$PPID/comm" || true
      refuse ERR_TCPAO_USAGE "the parent process (PID $PPID, $comm) was started with TCPAO_KEY and keeps it in its environment for its whole life; make $ROLE.sh the container's first process (ENTRYPOINT [\".../$ROLE.sh\"], no docker run --init): it starts tini itself"
    fi
  done <"/proc/$PPID/environ"
}

# Copies the key (from TCPAO_KEY or TCPAO_KEY_FILE) into $STAGED_KEY_FILE: a
# 0400 file of the sidecar's user in a 0700 directory of that user on a tmpfs,
# so it never reaches a disk, an image layer or the app.
stage_key() {
  local parent fstype owner
  [[ "$TCPAO_RUNTIME_DIR" == /?* && "$TCPAO_RUNTIME_DIR" != */ ]] ||
    refuse ERR_TCPAO_USAGE "TCPAO_RUNTIME_DIR ($TCPAO_RUNTIME_DIR) must be an absolute path such as /dev/shm/tcpao-proxy"
  parent="$(dirname "$TCPAO_RUNTIME_DIR")"
  fstype="$(stat -f -c %T -- "$parent" 2>/dev/null)" ||
    refuse ERR_TCPAO_USAGE "the directory holding TCPAO_RUNTIME_DIR ($parent) does not exist; use /dev/shm/tcpao-proxy"
  [[ "$fstype" == tmpfs || "$fstype" == ramfs ]] ||
    refuse ERR_TCPAO_USAGE "TCPAO_RUNTIME_DIR ($TCPAO_RUNTIME_DIR) is on $fstype, not on a tmpfs, so the key would reach a disk; use /dev/shm/tcpao-proxy or mount a tmpfs (docker run --tmpfs)"
  # A leftover from an earlier start of this container is reused; anything else there is refused.
  if [[ -L "$TCPAO_RUNTIME_DIR" || -e "$TCPAO_RUNTIME_DIR" ]]; then
    owner="$(stat -c %u -- "$TCPAO_RUNTIME_DIR")"
    if [[ -L "$TCPAO_RUNTIME_DIR" || ! -d "$TCPAO_RUNTIME_DIR" ]] || [[ "$owner" != 0 && "$owner" != "$SIDECAR_UID" ]]; then
      refuse ERR_TCPAO_USAGE "TCPAO_RUNTIME_DIR ($TCPAO_RUNTIME_DIR) exists and is not a directory of root or the sidecar's user; remove it or choose another path"
    fi
    rm -f -- "$STAGED_KEY_FILE"
  fi
  if ! { mkdir -p -- "$TCPAO_RUNTIME_DIR" && chown "$SIDECAR_UID:$SIDECAR_GID" -- "$TCPAO_RUNTIME_DIR" &&
    chmod 0700 -- "$TCPAO_RUNTIME_DIR"; }; then
    refuse ERR_TCPAO_USAGE "cannot create TCPAO_RUNTIME_DIR ($TCPAO_RUNTIME_DIR)"
  fi
  if ! (
    umask 077
    # printf is a builtin: the key is in no argv. The reader of a raw key file
    # drops exactly one trailing newline, so this one keeps the bytes as given.
    if [[ -n "${TCPAO_KEY:-}" ]]; then
      printf '%s\n' "$TCPAO_KEY" >"$STAGED_KEY_FILE"
    else
      cat -- "$TCPAO_KEY_FILE" >"$STAGED_KEY_FILE"
    fi
  ) || ! chown "$SIDECAR_UID:$SIDECAR_GID" -- "$STAGED_KEY_FILE" || ! chmod 0400 -- "$STAGED_KEY_FILE"; then
    refuse ERR_TCPAO_KEY_SOURCE "cannot write the key into TCPAO_RUNTIME_DIR ($TCPAO_RUNTIME_DIR); is the tmpfs full or read-only?"
  fi
  log 30 "key staged for the sidecar's user" key_file "$STAGED_KEY_FILE" key_origin "$([[ -n "${TCPAO_KEY:-}" ]] && echo TCPAO_KEY || echo TCPAO_KEY_FILE)"
}

render_config() {
  local template="$TCPAO_TEMPLATE_DIR/$ROLE.toml.tmpl" status=0
  [[ -r "$template" ]] || refuse ERR_TCPAO_RENDER_TEMPLATE "template $template is missing; set TCPAO_TEMPLATE_DIR to the directory holding $ROLE.toml.tmpl"
  mkdir -p "$(dirname "$TCPAO_CONFIG_PATH")" 2>/dev/null ||
    refuse ERR_TCPAO_RENDER_WRITE "cannot create the directory of TCPAO_CONFIG_PATH ($TCPAO_CONFIG_PATH)"
  TCPAO_KEY_FILE="$STAGED_KEY_FILE" "$RENDER_CONFIG" --role "$ROLE" --template "$template" --output "$TCPAO_CONFIG_PATH" || status=$?
  if ((status != 0)); then
    log 50 "config not rendered; fix the variable named above" status "$status"
    exit "$status"
  fi
  log 30 "config rendered" config "$TCPAO_CONFIG_PATH"
}

# The sidecar's [global] shutdown_timeout_secs, or nothing when the config does not set it.
config_shutdown_timeout() {
  awk '
    /^[[:space:]]*\[/ { in_global = ($0 ~ /^[[:space:]]*\[[[:space:]]*global[[:space:]]*\][[:space:]]*(#.*)?$/); next }
    in_global && /^[[:space:]]*shutdown_timeout_secs[[:space:]]*=/ {
      value = $0; sub(/^[^=]*=[[:space:]]*/, "", value); sub(/[[:space:]]*(#.*)?$/, "", value); print value; exit
    }' "$TCPAO_CONFIG_PATH"
}

# sidecar drain < supervisor grace < container stop timeout: the sidecar's
# forced shutdown (shutdown_timeout_secs, then up to 1 s to reset what is left)
# must end before the supervisor's SIGKILL.
check_drain_chain() {
  local grace="${SUPERVISE_STOP_GRACE_SECS:-12}" drain
  [[ "$grace" =~ ^[0-9]{1,5}$ ]] || refuse ERR_TCPAO_USAGE "SUPERVISE_STOP_GRACE_SECS must be a whole number of seconds (default 12)"
  drain="$(config_shutdown_timeout)"
  [[ "$drain" =~ ^[0-9]{1,5}$ ]] ||
    refuse ERR_TCPAO_CONFIG_INVALID "the config ($TCPAO_CONFIG_PATH) does not set [global] shutdown_timeout_secs to a whole number; the templates set 8, keep that line"
  ((10#$drain + 1 < 10#$grace)) ||
    refuse ERR_TCPAO_CONFIG_INVALID "shutdown_timeout_secs ($drain s) + 1 s is not below SUPERVISE_STOP_GRACE_SECS ($grace s), so the supervisor would SIGKILL the sidecar mid-drain; raise SUPERVISE_STOP_GRACE_SECS (and docker stop -t above it) or lower shutdown_timeout_secs"
  log 30 "drain chain checked" shutdown_timeout_secs "$((10#$drain))" stop_grace_secs "$((10#$grace))"
}

run_doctor() {
  local status=0
  log 30 "running tcpao-proxy doctor as the sidecar's user"
  as_sidecar "$TCPAO_PROXY_BIN" doctor --config "$TCPAO_CONFIG_PATH" </dev/null >&2 || status=$?
  if ((status != 0)); then
    log 50 "doctor reported a failing check; refusing to start (see its report above)" status "$status"
    exit "$status"
  fi
}

# The ports to guard: FORWARD_PLAIN's (the app's) and GUARD_PORTS (default: the
# image's other app ports), each once. A role with no app port guards nothing.
guard_ports() {
  local ports="${GUARD_PORTS-$DEFAULT_GUARD_PORTS}"
  [[ -n "${FORWARD_PLAIN:-}" ]] && ports="${FORWARD_PLAIN##*:} $ports"
  # shellcheck disable=SC2086 # word splitting is the point: one port per word
  printf '%s\n' $ports | sort -un | tr '\n' ' ' | sed 's/ $//'
}

guard_app_ports() {
  local ports output status=0
  ports="$(guard_ports)"
  [[ -n "$ports" ]] || return 0
  # shellcheck disable=SC2086 # one argument per port
  output="$("$TCPAO_PORT_GUARD" $ports 2>&1)" || status=$?
  ((status != 2)) || refuse ERR_TCPAO_USAGE "GUARD_PORTS and FORWARD_PLAIN must name ports from 1 to 65535 (got: $ports)"
  if ((status != 0)); then
    log 50 "cannot drop off-host TCP to the app's ports $ports; refusing to start the app exposed (run the container with --cap-add NET_ADMIN)" \
      code ERR_TCPAO_PORT_GUARD status "$status" detail "$output"
    exit 1
  fi
  log 30 "off-host TCP to the app's ports is dropped" ports "$ports"
}

run_role() {
  if (($# > 0)); then
    case "$1" in
      -h|--help) entrypoint_usage; exit 0 ;;
      *) entrypoint_usage >&2; refuse ERR_TCPAO_USAGE "$ROLE.sh takes no arguments; configure it with environment variables" ;;
    esac
  fi
  local app_cmd="${APP_CMD-$DEFAULT_APP_CMD}"
  [[ -n "${app_cmd//[[:space:]]/}" ]] || refuse ERR_TCPAO_USAGE "APP_CMD is empty; unset it for the image's default or set the command that starts the app"
  [[ -x "$TCPAO_PROXY_BIN" ]] || refuse ERR_TCPAO_USAGE "TCPAO_PROXY_BIN ($TCPAO_PROXY_BIN) is not an executable file"
  [[ -z "$TCPAO_INIT" || -x "$TCPAO_INIT" ]] || refuse ERR_TCPAO_USAGE "TCPAO_INIT ($TCPAO_INIT) is not an executable file; set it to tini's path, or empty for none"

  # From here on no child gets the key in its environment; stage_key copies it from this shell.
  export -n TCPAO_KEY
  validate_users
  validate_key_source
  [[ -n "${TCPAO_KEY:-}" ]] && refuse_parent_with_key
  stage_key
  unset TCPAO_KEY TCPAO_KEY_FILE
  render_config
  check_drain_chain
  run_doctor
  guard_app_ports
  log 30 "starting the app as $TCPAO_APP_USER and tcpao-proxy --mode $ROLE as $TCPAO_SIDECAR_USER"
  local init=()
  # -s: tini reaps orphans even when it is not PID 1 (a bare `docker run --init` or a test).
  [[ -n "$TCPAO_INIT" ]] && init=("$TCPAO_INIT" -s --)
  exec "${init[@]}" "$SUPERVISE" --app-user "$APP_UID" --sidecar-user "$SIDECAR_UID" --app "$app_cmd" \
    -- "$TCPAO_PROXY_BIN" --mode "$ROLE" --config "$TCPAO_CONFIG_PATH"
}
