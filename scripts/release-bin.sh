# Sourced by the benchmark scripts (needs ROOT, the project root): sets BIN to
# $LEARNCHAIN_BIN, or to the release `learnchain` of cargo's target dir ($CARGO_TARGET_DIR
# when set, relative to the project root if relative), building it if it is not there.
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="${LEARNCHAIN_BIN:-$TARGET_DIR/release/learnchain}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p learnchain-node)
