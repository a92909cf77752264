#!/usr/bin/env bash
# Run `rvlf conform` against an adapter in CI, writing the reports; exits
# with conform's status (0 pass, 1 a MUST case failed, 2 harness or adapter
# start-up error). The GitHub Action (action.yml) calls it; other CI systems
# can call it directly (ADAPTER.md, section 1).
#
# Environment:
#   RVLF_ADAPTER  the adapter command (required), run from the working directory
#   RVLF_EXPECT   known-failures file (optional)
#   RVLF_LEVEL    MUST, SHOULD or MAY (optional)
#   RVLF_JUNIT    JUnit XML report   (default rvlf-reports/junit.xml)
#   RVLF_JSON     JSON report        (default rvlf-reports/report.json)
#   RVLF_HTML     HTML report        (default rvlf-reports/report.html; written
#                                     only by an rvlf whose conform has --html)
#   RVLF_BIN      the rvlf binary to use; otherwise `rvlf` on PATH; otherwise
#                 installed with cargo: from RVLF_GIT (and RVLF_REV) if set,
#                 else from the rvlf checkout that holds this script
set -uo pipefail

: "${RVLF_ADAPTER:?RVLF_ADAPTER must name the adapter command}"
junit=${RVLF_JUNIT:-rvlf-reports/junit.xml}
json=${RVLF_JSON:-rvlf-reports/report.json}
html=${RVLF_HTML:-rvlf-reports/report.html}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -n "${RVLF_BIN:-}" ]; then
    rvlf=$RVLF_BIN
elif command -v rvlf >/dev/null 2>&1; then
    rvlf=$(command -v rvlf)
else
    command -v cargo >/dev/null 2>&1 || {
        echo "ci.sh: rvlf is not installed and cargo is not on PATH to install it" >&2
        exit 2
    }
    root=${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}
    if [ -n "${RVLF_GIT:-}" ]; then
        echo "ci.sh: installing rvlf from $RVLF_GIT${RVLF_REV:+ at $RVLF_REV}"
        cargo install --locked --root "$root" --git "$RVLF_GIT" ${RVLF_REV:+--rev "$RVLF_REV"} rvlf || exit 2
    elif grep -q '^name = "rvlf"$' "$here/Cargo.toml" 2>/dev/null; then
        echo "ci.sh: installing rvlf from $here"
        cargo install --locked --root "$root" --path "$here" || exit 2
    else
        echo "ci.sh: rvlf is not installed; set RVLF_GIT to its repository to install it" >&2
        exit 2
    fi
    rvlf=$root/bin/rvlf
fi
"$rvlf" --version

args=(conform --adapter "$RVLF_ADAPTER" --junit "$junit" --json "$json")
[ -n "${RVLF_EXPECT:-}" ] && args+=(--expect "$RVLF_EXPECT")
[ -n "${RVLF_LEVEL:-}" ] && args+=(--level "$RVLF_LEVEL")
# --html is newer than --junit and --json: pass it only to an rvlf that has it.
# (Its help is read whole first: grep -q stopping early would fail the pipe.)
conform_help=$("$rvlf" conform --help)
if grep -q -- '--html' <<<"$conform_help"; then
    args+=(--html "$html")
    mkdir -p "$(dirname "$html")"
else
    html=
fi
mkdir -p "$(dirname "$junit")" "$(dirname "$json")"

"$rvlf" "${args[@]}"
status=$?
echo "ci.sh: rvlf conform exited $status; reports: $junit $json${html:+ $html}"
exit "$status"
