#!/usr/bin/env bash
# Runs every fuzz target listed in scripts/fuzz-targets for FUZZTIME each
# (go test -fuzz takes one target per run) and prints a summary line per
# target: its time, executions and whether it failed. Exits non-zero if any
# target found a failing input (kept under the package's testdata/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
parallel=${FUZZPARALLEL:-2}
summary=()
failed=0
while read -r pkg target; do
	case "$pkg" in '' | '#'*) continue ;; esac
	echo "== fuzz $pkg $target for $fuzztime"
	log=$(mktemp)
	start=$(date +%s)
	# Minimizing each new interesting input may take a minute by default,
	# with no new input tried meanwhile (a 10 s CI run found one and spent
	# the rest minimizing it): 2 s leaves the time to exploring. A crasher is
	# kept whether or not its minimizing finished.
	if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s \
		-parallel "$parallel" 2>&1 | tee "$log"; then
		result=ok
	else
		result=FAILED
		failed=1
	fi
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	rm -f "$log"
	summary+=("$(printf '%-8s %-40s %5ss %12s execs' "$result" "$pkg $target" "$(($(date +%s) - start))" "${execs:-?}")")
done <scripts/fuzz-targets
echo "== fuzz summary (FUZZTIME=$fuzztime)"
printf '%s\n' "${summary[@]}"
exit $failed
