# shellcheck shell=bash
# JSON log lines for the entrypoint scripts, shaped like the sidecar's pino
# output so one log pipeline reads both. Set LOG_MODULE (and optionally
# LOG_ROLE) before calling log.

json_string() {
  local text="$1"
  text="${text//\\/\\\\}"
  text="${text//\"/\\\"}"
  text="${text//$'\n'/\\n}"
  text="${text//$'\r'/\\r}"
  text="${text//$'\t'/\\t}"
  printf '"%s"' "$text"
}

# One JSON line on stderr: log LEVEL MSG [KEY VALUE]... (numbers stay numbers).
log() {
  local level="$1" msg="$2" line
  shift 2
  line="{\"level\":$level,\"time\":$(date +%s%3N),\"module\":\"$LOG_MODULE\""
  [ -n "${LOG_ROLE:-}" ] && line+=",\"role\":\"$LOG_ROLE\""
  line+=",\"msg\":$(json_string "$msg")"
  while (($# >= 2)); do
    if [[ "$2" =~ ^[0-9]+$ ]]; then line+=",\"$1\":$2"; else line+=",\"$1\":$(json_string "$2")"; fi
    shift 2
  done
  printf '%s}\n' "$line" >&2
}
