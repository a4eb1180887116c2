# Sourced by the bench scripts: repository root, the tools they need, the
# release binary, the output dir, peak() and median_table().
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
# Markdown table of a hyperfine --export-json file: median, mean and min of
# each command, and its median's ratio to the command at index BASE.
#   median_table JSON BASE "name of the base command"
median_table() {
  python3 - "$@" <<'PY'
import json, sys
path, base_index, base_name = sys.argv[1:4]
r = json.load(open(path))["results"]
base = r[int(base_index)]["median"]
print(f"| command | median ms | mean ms | min ms | ratio to {base_name} (median) |")
print("|---|---:|---:|---:|---:|")
for x in r:
    print(f"| {x['command']} | {x['median']*1e3:.1f} | {x['mean']*1e3:.1f} | {x['min']*1e3:.1f} | {x['median']/base:.2f} |")
PY
}
export -f median_table
