#!/usr/bin/env bash
# Load-independent counts of one `apply --profile high-conn` (issue 15),
# the figures to compare builds by on a shared machine: user-space
# instructions (callgrind), system calls (strace -c) and page faults
# (perf stat), next to one `sysctl -w` of the same keys. As root: each run
# is inside its own network namespace (`unshare -n`), never on the host's
# sysctls; the state dir is on tmpfs with HISTORY earlier transactions.
#   bench/apply-count.sh             # the release build, 400 earlier transactions
#   HISTORY=100 bench/apply-count.sh
#   TCTO_BIN=/path/to/tcto-tune bench/apply-count.sh   # another build
set -euo pipefail
source "$(dirname "$0")/common.sh"
BIN=${TCTO_BIN:-$BIN}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace >/dev/null; }
unshare -n bash -s "$BIN" "$OUT" "${HISTORY:-400}" <<'INNER'
set -euo pipefail
BIN=$1 OUT=$2 HISTORY=$3
SHM=$(mktemp -d /dev/shm/tcto-count-XXXX)
trap 'rm -rf "$SHM"' EXIT
SEED="sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=512 net.netfilter.nf_conntrack_tcp_timeout_established=432000 net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 net.netfilter.nf_conntrack_tcp_timeout_close_wait=30"
WRITE="sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192 net.netfilter.nf_conntrack_tcp_timeout_established=7440 net.netfilter.nf_conntrack_tcp_timeout_time_wait=60 net.netfilter.nf_conntrack_tcp_timeout_close_wait=60"
export TCTO_TUNE_STATE_DIR=$SHM/h
for _ in $(seq "$HISTORY"); do $SEED; "$BIN" apply --profile high-conn >/dev/null; done
instructions() { # callgrind's total for one run of the command
  valgrind -q --tool=callgrind --callgrind-out-file="$OUT/count.cg" "$@" >/dev/null 2>&1
  callgrind_annotate "$OUT/count.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
syscalls() { strace -f -c -o "$OUT/count.strace" "$@" >/dev/null; awk '$NF == "total" { print $(NF-2) }' "$OUT/count.strace"; }
faults() { perf stat -x, -e page-faults -r 20 --pre "$SEED" "$@" 2>&1 >/dev/null | awk -F, '$3 == "page-faults" { print $1 }'; }
row() { # name, then the command; each measure starts from the same values
  local name=$1 i s f
  shift
  $SEED; i=$(instructions "$@")
  $SEED; s=$(syscalls "$@")
  if command -v perf >/dev/null; then f=$(faults "$@"); else f=-; fi
  $SEED
  printf '| %s | %s | %s | %s |\n' "$name" "$i" "$s" "$f"
}
echo "| command (state dir on tmpfs, $HISTORY earlier transactions) | instructions | system calls | page faults |"
echo "|---|---:|---:|---:|"
row "tcto-tune apply --profile high-conn" "$BIN" apply --profile high-conn
row "tcto-tune apply --dry-run --profile high-conn" "$BIN" apply --dry-run --profile high-conn
row "tcto-tune --version" "$BIN" --version
row "sysctl -w (same keys)" $WRITE
INNER
