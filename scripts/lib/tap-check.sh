# Sourced by scripts that report their checks as TAP for scripts/test-all.
# check NAME CMD...: runs CMD, prints its output as TAP comments and one ok / not ok line.
checks=0
failed=0
check() {
  local name="$1"; shift
  local output status=0
  checks=$((checks + 1))
  output="$("$@" 2>&1)" || status=$?
  [ -z "$output" ] || printf '%s\n' "$output" | sed 's/^/# /'
  if [ "$status" -eq 0 ]; then
    echo "ok $checks - $name"
  else
    failed=$((failed + 1))
    echo "not ok $checks - $name (exit $status)"
  fi
}
