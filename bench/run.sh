#!/usr/bin/env bash
# One benchmark suite: runs every bench/*.sh side by side with its peer tool
# in the same run, and writes BENCHMARKS.md (machine, date, medians, ratios,
# peak memory). As root; installs hyperfine and GNU time when missing.
#   bench/run.sh            # all
#   QUICK=1 bench/run.sh    # fewer runs
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
if ((${#need[@]})); then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
export OUT="$PWD/target/bench"
mkdir -p "$OUT"
[ -n "${QUICK:-}" ] && export RUNS=10
report="$OUT/report.md"
: >"$report"
for s in plan-apply notrack offload persist diagnose; do
  [ -x "bench/$s.sh" ] || [ -f "bench/$s.sh" ] || continue
  echo "== bench/$s.sh" >&2
  log="$OUT/$s.log"
  if bash "bench/$s.sh" >"$log" 2>&1; then
    { echo "### $s"; echo; echo '```'; grep -vE '^\s*$|Warning|Consider re-running|^  [A-Z]|^Benchmark|Time \(|Range \(|Summary|ran$|times faster' "$log" | tail -25; echo '```'; echo; } >>"$report"
  else
    { echo "### $s"; echo; echo "FAILED, see $log"; echo; } >>"$report"
    tail -20 "$log" >&2
  fi
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`bench/run.sh\` (as root). Whole-process medians from hyperfine;"
  echo "each tcto-tune command is measured in the same run as its peer tool, and"
  echo "ratios are tcto-tune / peer. Peak memory is GNU time's maximum RSS."
  echo
  echo "- machine: $(nproc) vCPU, $cpu, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "- kernel: $(uname -r); $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  cat "$report"
} >BENCHMARKS.md.new
if [ -f BENCHMARKS.md ] && grep -q '^## Fuzzing' BENCHMARKS.md; then
  sed -n '/^## Fuzzing/,$p' BENCHMARKS.md >>BENCHMARKS.md.new
fi
mv BENCHMARKS.md.new BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
