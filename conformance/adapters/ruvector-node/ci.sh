#!/usr/bin/env bash
# The published @ruvector/rvf-node (pinned in package.json) under rvlf:
#   1. conform with the known failures (expect.txt) and the unstable cases left
#      out (skip.txt); exits with its status;
#   2. a bounded stress run, which must end in a violation (stress-expect.txt).
# Usage: ci.sh [OUTDIR]   (OUTDIR gets ruvector-node.json; default target/reports)
# Without npm, or when `npm ci` fails (no registry), it prints
# "SKIP ruvector-node: <reason>" and exits 0.
# RVLF_BIN names the rvlf binary (default target/release/rvlf, else `rvlf` on PATH).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"
outdir=${1:-target/reports}
rvlf=${RVLF_BIN:-target/release/rvlf}
[ -x "$rvlf" ] || rvlf=$(command -v rvlf) || { echo "ci.sh: no rvlf binary (build it or set RVLF_BIN)" >&2; exit 2; }

skip() {
    echo "SKIP ruvector-node: $*"
    exit 0
}
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
npm_log=$(mktemp)
trap 'rm -f "$npm_log"' EXIT
if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$npm_log" 2>&1; then
    why=$(grep -m 3 -E 'npm (error|ERR!) (code|network|[A-Za-z`])' "$npm_log" | sed 's/^npm \(error\|ERR!\) //' | tr '\n' ' ')
    skip "npm ci failed (registry unreachable?): ${why:-see the npm log}"
fi

adapter="node conformance/adapters/ruvector-node/rvlf_adapter.js"
skips=()
while read -r glob _; do
    case $glob in '' | '#'*) continue ;; esac
    skips+=(--skip "$glob")
done <"$here/skip.txt"

mkdir -p "$outdir"
code=0
conform_log="$outdir/ruvector-node-conform.txt"
"$rvlf" conform --adapter "$adapter" --request-timeout 2 --expect "$here/expect.txt" \
    "${skips[@]}" --json "$outdir/ruvector-node.json" >"$conform_log" 2>&1 || code=$?
if [ "$code" = 0 ]; then
    echo "ruvector-node conform: $(grep -E '^[0-9]+ cases:' "$conform_log") (known failures expected); exit 0"
else
    cat "$conform_log"
    echo "ruvector-node conform: exit $code"
    exit "$code"
fi

# The package lets two writers hold the lock at once: the stress run must say so.
stress_dir=/dev/shm
[ -d "$stress_dir" ] && [ -w "$stress_dir" ] || stress_dir=${TMPDIR:-/tmp}
stress_log="$outdir/ruvector-node-stress.txt"
scode=0
"$rvlf" stress --adapter "$adapter" --writers 4 --count 400 --dir "$stress_dir" --progress-every 0 >"$stress_log" 2>&1 || scode=$?
want=$(grep -v '^#' "$here/stress-expect.txt" | grep -v '^$' | head -n 1)
got=$(grep -E '^verdict:' "$stress_log" || echo "verdict: none (exit $scode)")
case "$scode:$want" in
    1:violation)
        echo "ruvector-node stress: as expected, $got"
        ;;
    0:violation)
        cat "$stress_log"
        echo "ruvector-node stress: expected a violation (stress-expect.txt) but none was detected"
        exit 1
        ;;
    *)
        cat "$stress_log"
        echo "ruvector-node stress: exit $scode (expected: $want)"
        exit 1
        ;;
esac
