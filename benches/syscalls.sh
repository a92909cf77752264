#!/usr/bin/env bash
# Syscalls per uncontended acquire + release, per variant and file system,
# counted with `strace -c -f`: the same binary runs 0 cycles and then N cycles
# of one variant, and the difference per syscall is divided by N, so start-up
# costs cancel out.
#
#   benches/syscalls.sh                 # all variants, tmpfs and $TMPDIR (or /tmp)
#   N=5000 VARIANTS="reference seed" benches/syscalls.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
VARIANTS=${VARIANTS:-"reference seed floor-fsync floor-no-fsync atomic-floor protocol-floor flock"}
DIRS=${DIRS:-"/dev/shm ${TMPDIR:-/tmp}"}
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)" >&2; exit 2; }

exe=$(cargo bench --bench lock --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "cannot find the lock benchmark executable" >&2; exit 2; }

# calls per syscall name, "name count" lines, from a strace -c summary file
counts() {
    awk '/^-+/ {body = 1; next} body && NF >= 5 && $NF != "total" {print $NF, $4}' "$1"
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for dir in $DIRS; do
    fs=$( (findmnt -n -o FSTYPE -T "$dir" 2>/dev/null || stat -f -c %T "$dir") | head -1)
    work=$(mktemp -d -p "$dir" rvlf-syscalls.XXXXXX)
    for v in $VARIANTS; do
        RVLF_BENCH_CYCLES="$v,0,$work" strace -c -f -o "$scratch/zero" "$exe" >/dev/null
        RVLF_BENCH_CYCLES="$v,$N,$work" strace -c -f -o "$scratch/many" "$exe" >/dev/null
        counts "$scratch/zero" >"$scratch/zero.c"
        counts "$scratch/many" >"$scratch/many.c"
        awk -v n="$N" -v v="$v" -v fs="$fs" '
            FNR == NR {zero[$1] = $2; next}
            {d = ($2 - zero[$1]) / n; if (d >= 0.05) {total += d; list = list sprintf(" %s %.2g", $1, d)}}
            END {printf "%-15s %-10s %6.2f  %s\n", v, fs, total, list}
        ' "$scratch/zero.c" "$scratch/many.c"
    done
    rm -rf "$work"
done
