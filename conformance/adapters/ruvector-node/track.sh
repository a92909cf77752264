#!/usr/bin/env bash
# Compare the latest published @ruvector/rvf-node with the pinned one
# (package.json): install the latest into a temporary directory, run the whole
# suite against both, and print the cases whose verdict differs.
# Usage: track.sh [OUTDIR]   (keeps latest.json, pinned.json, diff.json there;
# default: a temporary directory, removed at the end).
# RVLF_BIN names the rvlf binary (default target/release/rvlf, else `rvlf` on PATH).
# Exits 0 whether or not verdicts differ, 2 when something could not run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"
rvlf=${RVLF_BIN:-target/release/rvlf}
[ -x "$rvlf" ] || rvlf=$(command -v rvlf) || { echo "track.sh: no rvlf binary" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${1:-$work}
mkdir -p "$out"

pinned=$(node -p "require('$here/package.json').dependencies['@ruvector/rvf-node']")
latest=$(npm view @ruvector/rvf-node version) || { echo "track.sh: npm view failed" >&2; exit 2; }
echo "pinned @ruvector/rvf-node $pinned, latest published $latest"

# The latest: the same adapter, a copy of it next to a fresh install. Cases
# that run the adapter as another user need it readable by everyone.
chmod 755 "$work"
mkdir -p "$work/latest"
cp "$here/rvlf_adapter.js" "$work/latest/"
(cd "$work/latest" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error \
    "@ruvector/rvf-node@$latest" >/dev/null) || { echo "track.sh: npm install of $latest failed" >&2; exit 2; }
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || { echo "track.sh: npm ci of the pinned version failed" >&2; exit 2; }

run() { # <report.json> <adapter dir>
    local code=0
    "$rvlf" conform --adapter "node $2/rvlf_adapter.js" --request-timeout 2 --json "$1" >/dev/null || code=$?
    [ "$code" -le 1 ] || { echo "track.sh: conform against $2 exited $code" >&2; exit 2; }
}
run "$out/pinned.json" "$here"
run "$out/latest.json" "$work/latest"
"$rvlf" report merge "$out/pinned.json" "$out/latest.json" --json "$out/diff.json" >/dev/null

node - "$out/diff.json" "$pinned" "$latest" <<'JS'
const [file, pinned, latest] = process.argv.slice(2);
const m = require(file);
const differ = m.cases.filter((c) => c.verdicts[0] !== c.verdicts[1]);
for (const c of differ) {
  console.log(`${c.id.padEnd(46)} ${pinned}: ${c.verdicts[0] ?? '-'}  ${latest}: ${c.verdicts[1] ?? '-'}`);
}
console.log(`${differ.length} of ${m.cases.length} cases differ between ${pinned} and ${latest}` +
  (differ.length ? ' (hostile::sparse-gib varies between FAIL and HANG by itself: see README.md)' : ''));
JS
