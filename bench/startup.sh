#!/usr/bin/env bash
# Where `tcto-tune`'s process start-up goes (issue 15). Reads only; no root.
# Instruction counts (callgrind, user space) do not move with machine load, so
# they are the figures to compare across builds; task-clock and page faults
# (perf stat) give the wall-side picture, kernel work included.
#   /bin/true          the floor of any dynamically linked C program
#   --version          clap parse and print, nothing else
#   plan               reads the host; what apply does before it writes
# Rows of the breakdown, inclusive counts from callgrind_annotate:
#   _dl_relocate_object  the dynamic loader's relocations (BIND_NOW: every
#                        symbol of libc, libnftnl and libmnl now; libgcc_s
#                        is no longer loaded, its unwinder is linked in)
#   Cli ... ::command    clap building the Command tree (since issue 15's
#                        second round only the top level: each subcommand's
#                        arguments are deferred until it is parsed)
#   pthread_getattr_np   std's main-thread stack guard (glibc parses
#                        /proc/self/maps with sscanf); "-" since the binary
#                        starts itself (#![no_main], src/start.rs)
set -euo pipefail
source "$(dirname "$0")/common.sh"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v perf >/dev/null || { echo "perf not found: task-clock rows skipped" >&2; }

row() { # name, then the command
  local name=$1 cg="$OUT/startup-$1.cg"; shift
  valgrind -q --tool=callgrind --callgrind-out-file="$cg" "$@" >/dev/null 2>&1
  callgrind_annotate --inclusive=yes "$cg" 2>/dev/null | awk -v name="$name" '
    /PROGRAM TOTALS/ { total = $1 }
    /dl-reloc.c:_dl_relocate_object/ { reloc = $1 }
    /CommandFactory>::command/ { clap = $1 }
    /pthread_getattr_np.c:pthread_getattr_np@/ { guard = $1 }
    END { printf "| %s | %s | %s | %s | %s |", name, total, reloc, (clap ? clap : "-"), (guard ? guard : "-") }'
  if command -v perf >/dev/null; then
    perf stat -x, -e task-clock,page-faults -r 50 "$@" 2>&1 >/dev/null |
      awk -F, '$3 == "task-clock" { t = $1 } $3 == "page-faults" { f = $1 } END { printf " %.2f | %d |\n", t, f }'
  else
    echo " - | - |"
  fi
}
{
  echo "| process | instructions | relocation | clap Command | stack guard | task-clock ms | page faults |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  row true /bin/true
  row version "$BIN" --version
  row plan "$BIN" plan --profile high-conn
} | tee "$OUT/startup.md"
