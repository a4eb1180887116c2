#!/usr/bin/env bash
# Benchmark: apply 1,000 trusted NOTRACK flows with `tcto-tune apply`
# (netlink batch, plus reading the state, planning, journaling and the read
# back) against `nft -f` of the same ruleset, both from an absent table,
# inside a private network namespace (the host's ruleset is never touched).
# A third command adds the read back tcto-tune always does (`nft list
# table`), for a like-for-like comparison.
#
# Usage: bench/notrack.sh [FLOWS]   (as root; needs hyperfine and nft)
set -euo pipefail
FLOWS="${1:-1000}"
if [ "${TCTO_BENCH_INNER:-}" != 1 ]; then
  # Builds; peak() and median_table() are exported to the re-exec below.
  source "$(dirname "$0")/common.sh"
  exec unshare -n env TCTO_BENCH_INNER=1 "$0" "$@"
fi
ip link set lo up
BIN="$PWD/target/release/tcto-tune"
WORK="$(mktemp -d /tmp/tcto-bench.XXXXXX)"
trap 'nft delete table inet tcto_tune 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Flow i: client subnet 10.<1+i/250>.<i%250>.0/24 -> 10.200.0.0/24 port 8080.
# Past 32 flows tcto-tune puts them into an interval set; the equivalent
# ruleset for `nft -f` is the table as tcto-tune's plan prints it.
profile="$WORK/bench.toml"
ruleset="$WORK/bench.nft"
echo 'name = "bench"' >"$profile"
for ((i = 0; i < FLOWS; i++)); do
  printf '[[notrack]]\nfrom = "10.%d.%d.0/24"\nto = "10.200.0.0/24"\nport = 8080\n' \
    $((1 + i / 250)) $((i % 250)) >>"$profile"
done
"$BIN" --json plan --profile "$profile" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["changes"][0]["desired"], end="")' >"$ruleset"

# Both tools must produce the same table.
"$BIN" --state-dir "$WORK/s" apply --profile "$profile" >/dev/null
nft list ruleset >"$WORK/ours.txt"
nft delete table inet tcto_tune
nft -f "$ruleset"
nft list ruleset >"$WORK/theirs.txt"
nft delete table inet tcto_tune
cmp "$WORK/ours.txt" "$WORK/theirs.txt"
echo "same ruleset: $(grep -c ' notrack$' "$WORK/ours.txt") rules for $FLOWS flows" >&2

reset="nft delete table inet tcto_tune 2>/dev/null; rm -rf $WORK/s"
hyperfine -N --warmup 3 --runs "${RUNS:-40}" --export-json "$WORK/result.json" \
  --prepare "sh -c '$reset'" \
  -n "tcto-tune apply ($FLOWS flows)" "$BIN --state-dir $WORK/s apply --profile $profile" \
  -n "nft -f ($FLOWS flows)" "nft -f $ruleset" \
  -n "nft -f + nft list table ($FLOWS flows)" "sh -c 'nft -f $ruleset && nft list table inet tcto_tune >/dev/null'"
median_table "$WORK/result.json" 1 "nft -f"
sh -c "$reset"
ours=$(peak "$BIN" --state-dir "$WORK/s" apply --profile "$profile")
sh -c "$reset"
theirs=$(peak nft -f "$ruleset")
echo "peak RSS KiB: tcto-tune apply ($FLOWS flows) $ours, nft -f $theirs"
