#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another, single job, at the lowest CPU
# priority, and prints a table of executions, coverage and crashes.
#
#   scripts/fuzz.sh [--time SECONDS] [TARGET...]
#
# Default: 300 s per target, every target. Needs the nightly toolchain; installs cargo-fuzz
# if it is missing. Builds go to $CARGO_TARGET_DIR, default ~/.cache/learnchain/fuzz-target
# (never the main workspace's target directory). Seed corpora are generated
# (fuzz/examples/seeds.rs) for targets that have none; corpora, artifacts and the run logs
# live under fuzz/corpus, fuzz/artifacts (both git-ignored). The targets `node_config` and
# `node_keys` build the node crate (feature `node` of the fuzz crate).
set -euo pipefail

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

time_s=300
targets=()
while (($#)); do
    case "$1" in
        --time)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage 2
            time_s="$2"
            shift 2
            ;;
        --time=*)
            time_s="${1#--time=}"
            [[ "$time_s" =~ ^[0-9]+$ ]] || usage 2
            shift
            ;;
        -h | --help) usage 0 ;;
        -*) echo "unknown option $1" >&2; usage 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/learnchain/fuzz-target}"

all_targets=(gossip sync_messages items genesis_toml csv keystore rpc_params model_file node_config node_keys)
if ((${#targets[@]} == 0)); then
    targets=("${all_targets[@]}")
fi

# Longest input libFuzzer generates, per target: room for a few blocks, items or a small file.
max_len() {
    case "$1" in
        gossip | sync_messages | items) echo 16384 ;;
        genesis_toml | model_file) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

features() {
    case "$1" in
        node_config | node_keys) echo "--features=node" ;;
        *) echo "" ;;
    esac
}

for t in "${targets[@]}"; do
    if [[ ! " ${all_targets[*]} " == *" $t "* ]]; then
        echo "unknown target $t (targets: ${all_targets[*]})" >&2
        exit 2
    fi
done

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    nice -n 19 cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
need_seeds=0
for t in "${targets[@]}"; do
    if [[ ! -d "corpus/$t" ]] || [[ -z "$(ls -A "corpus/$t")" ]]; then
        need_seeds=1
    fi
done
if ((need_seeds)); then
    echo "generating seed corpora" >&2
    # Seeds only the targets whose corpus is empty or absent.
    nice -n 19 cargo +nightly run --quiet --example seeds -- "$fuzz_dir/corpus"
fi

results=()
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/run-$(date +%Y%m%dT%H%M%S).log"
    before=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
    echo "== $t: ${time_s}s (log: fuzz/$log)" >&2
    rc=0
    # shellcheck disable=SC2046
    nice -n 19 cargo +nightly fuzz run $(features "$t") "$t" "corpus/$t" -- \
        -max_total_time="$time_s" -rss_limit_mb=2048 -max_len="$(max_len "$t")" -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    after=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | tail -1 | awk '{print $2}' || true)
    if [[ -z "$runs" ]]; then
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
    fi
    last=$(grep -E '#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | awk '{print $2}' || true)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | awk '{print $2}' || true)
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" | awk '{print $2}' || true)
    eps=$(grep -oE 'exec/s: [0-9]+' <<<"$last" | awk '{print $2}' || true)
    crashes=$((after - before))
    if ((rc != 0)) && ((crashes == 0)); then
        crashes="? (exit $rc, see log)"
    fi
    if ((rc != 0)); then
        status=1
    fi
    results+=("$(printf '%-14s %12s %8s %7s %7s %-14s %s' "$t" "${runs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$crashes")")
done

printf '\n%-14s %12s %8s %7s %7s %-14s %s\n' target executions exec/s cov ft corpus crashes
for r in "${results[@]}"; do
    echo "$r"
done
exit "$status"
