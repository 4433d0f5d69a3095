# shellcheck shell=bash disable=SC2034 # the RESOLVED_* and DEFAULT_* variables are for the scripts that source this file
# The two unprivileged users of the container: one for the app, one for the
# sidecar. Different uids keep the app out of the sidecar's /proc/PID/environ,
# /proc/PID/mem and key file; setpriv drops every capability and sets
# no_new_privs, so no setuid program gives root back to either.
#
# A user is a name from /etc/passwd or a bare uid (then its gid is the same
# number and it has no supplementary groups).

# The users the images create (see docs/deployment-runbook.md, "Processes and users").
readonly DEFAULT_APP_USER=tcpao-app
readonly DEFAULT_SIDECAR_USER=tcpao-proxy

# resolve_user SPEC: sets RESOLVED_UID, RESOLVED_GID, RESOLVED_HOME and
# RESOLVED_GROUPS (setpriv's groups option). Returns 1 for an unknown name.
resolve_user() {
  local spec="$1" entry
  if entry="$(getent passwd "$spec")"; then
    IFS=: read -r _ _ RESOLVED_UID RESOLVED_GID _ RESOLVED_HOME _ <<<"$entry"
    RESOLVED_GROUPS=--init-groups
  elif [[ "$spec" =~ ^[0-9]{1,10}$ ]]; then
    RESOLVED_UID="$((10#$spec))"
    RESOLVED_GID="$RESOLVED_UID"
    RESOLVED_HOME=/
    RESOLVED_GROUPS=--clear-groups
  else
    return 1
  fi
}

# as_user_prefix ARRAY UID GID GROUPS HOME: stores in ARRAY the command prefix
# that runs a program as that user, without capabilities, for good.
as_user_prefix() {
  local -n prefix_out="$1"
  prefix_out=(setpriv "--reuid=$2" "--regid=$3" "$4" --inh-caps=-all --bounding-set=-all --no-new-privs
    -- env "HOME=$5")
}
