# shellcheck shell=bash
# Shared startup contract of the two role entrypoints (deployment spec, section 7).
# Sourced by initiator.sh and terminator.sh after they set ROLE and DEFAULT_APP_CMD.
#
#   1. validate the environment (a key source, the role's endpoints);
#   2. render $TCPAO_CONFIG_PATH from $TCPAO_TEMPLATE_DIR/$ROLE.toml.tmpl;
#   3. run `tcpao-proxy doctor --config ...` and refuse to start when a check fails;
#   4. hand over to supervise.sh: the app ($APP_CMD) and the sidecar, tied together.
#
# Paths can be moved with environment variables (so the entrypoints run unchanged
# outside the image); nothing here can turn TCP-AO or the doctor off.

ENTRYPOINT_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
readonly ENTRYPOINT_DIR
# The entrypoints live in <home>/deploy/entrypoint, in the image and in the repo.
TCPAO_PROXY_HOME="$(cd "$ENTRYPOINT_DIR/../.." && pwd)"
readonly TCPAO_PROXY_HOME

readonly TCPAO_PROXY_BIN="${TCPAO_PROXY_BIN:-/usr/local/bin/tcpao-proxy}"
readonly TCPAO_TEMPLATE_DIR="${TCPAO_TEMPLATE_DIR:-/etc/tcpao-proxy}"
readonly TCPAO_CONFIG_PATH="${TCPAO_CONFIG_PATH:-/etc/tcpao-proxy/config.toml}"
readonly RENDER_CONFIG="$TCPAO_PROXY_HOME/scripts/render-config"

LOG_MODULE=entrypoint
LOG_ROLE="$ROLE"
# shellcheck source-path=SCRIPTDIR source=jsonlog.sh
. "$ENTRYPOINT_DIR/jsonlog.sh"

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
Paths:               TCPAO_PROXY_BIN ($TCPAO_PROXY_BIN), TCPAO_TEMPLATE_DIR ($TCPAO_TEMPLATE_DIR),
                     TCPAO_CONFIG_PATH ($TCPAO_CONFIG_PATH)
USAGE
}

validate_key_source() {
  # Only presence is tested here: the key's value is never read by this script.
  local has_key=0 has_file=0
  [[ -n "${TCPAO_KEY:-}" ]] && has_key=1
  [[ -n "${TCPAO_KEY_FILE:-}" ]] && has_file=1
  if ((has_key && has_file)); then
    refuse ERR_TCPAO_KEY_SOURCE "both TCPAO_KEY and TCPAO_KEY_FILE are set; set only one"
  fi
  if ((!has_key && !has_file)); then
    refuse ERR_TCPAO_KEY_SOURCE "neither TCPAO_KEY nor TCPAO_KEY_FILE is set; pass the shared key at run time (e.g. docker run -e TCPAO_KEY), never in the image"
  fi
  if ((has_file)) && [[ ! -r "$TCPAO_KEY_FILE" ]]; then
    refuse ERR_TCPAO_KEY_SOURCE "TCPAO_KEY_FILE names a file that does not exist or is not readable; mount the key file there"
  fi
}

render_config() {
  local template="$TCPAO_TEMPLATE_DIR/$ROLE.toml.tmpl" status=0
  [[ -r "$template" ]] || refuse ERR_TCPAO_RENDER_TEMPLATE "template $template is missing; set TCPAO_TEMPLATE_DIR to the directory holding $ROLE.toml.tmpl"
  mkdir -p "$(dirname "$TCPAO_CONFIG_PATH")" 2>/dev/null ||
    refuse ERR_TCPAO_RENDER_WRITE "cannot create the directory of TCPAO_CONFIG_PATH ($TCPAO_CONFIG_PATH)"
  env -u TCPAO_KEY "$RENDER_CONFIG" --role "$ROLE" --template "$template" --output "$TCPAO_CONFIG_PATH" || status=$?
  if ((status != 0)); then
    log 50 "config not rendered; fix the variable named above" status "$status"
    exit "$status"
  fi
  log 30 "config rendered" config "$TCPAO_CONFIG_PATH"
}

run_doctor() {
  local status=0
  log 30 "running tcpao-proxy doctor"
  "$TCPAO_PROXY_BIN" doctor --config "$TCPAO_CONFIG_PATH" </dev/null >&2 || status=$?
  if ((status != 0)); then
    log 50 "doctor reported a failing check; refusing to start (see its report above)" status "$status"
    exit "$status"
  fi
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

  validate_key_source
  render_config
  run_doctor
  log 30 "starting the app and tcpao-proxy --mode $ROLE"
  exec "$ENTRYPOINT_DIR/supervise.sh" --app "$app_cmd" -- "$TCPAO_PROXY_BIN" --mode "$ROLE" --config "$TCPAO_CONFIG_PATH"
}
