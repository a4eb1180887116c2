# Sourced by the bench scripts: repository root, the tools they need, the
# release binary, the output dir, and peak().
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
if ((${#need[@]})); then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build -q --release -p tcto-tune-cli
BIN=$PWD/target/release/tcto-tune
OUT=${OUT:-$PWD/target/bench}
mkdir -p "$OUT"
# Peak resident memory of a command, KiB (GNU time).
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
export -f peak
