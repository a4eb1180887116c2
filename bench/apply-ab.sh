#!/usr/bin/env bash
# A/B wall time of `apply --profile high-conn` (issue 15) for two or more
# builds on a shared, noisy machine, timed as plan-apply.sh times its
# "no env" row (hyperfine -N, state dir on tmpfs in the environment, each
# run from the same prior values) but in ROUNDS short hyperfine runs whose
# command order is shuffled each round, so a neighbour's load falls on
# every command alike. Reports each command's median over all runs and its
# ratio to the median of `sysctl -w` of the same keys. As root, inside its
# own network namespace (`unshare -n`); each build has its own state dir
# holding HISTORY earlier transactions.
#   bench/apply-ab.sh OLD_BIN NEW_BIN [MORE_BINS...]
#   ROUNDS=20 RUNS=30 HISTORY=100 bench/apply-ab.sh /tmp/old target/release/tcto-tune
set -euo pipefail
(($# >= 1)) || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
bins=()
for b in "$@"; do bins+=("$(readlink -f "$b")"); done
exec unshare -n python3 - "${ROUNDS:-20}" "${RUNS:-30}" "${HISTORY:-100}" "${bins[@]}" <<'PY'
import json, os, random, shutil, statistics, subprocess, sys, tempfile

rounds, runs, history, bins = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
SEED = ("sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=512 "
        "net.netfilter.nf_conntrack_tcp_timeout_established=432000 "
        "net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 "
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait=30")
WRITE = ("sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192 "
         "net.netfilter.nf_conntrack_tcp_timeout_established=7440 "
         "net.netfilter.nf_conntrack_tcp_timeout_time_wait=60 "
         "net.netfilter.nf_conntrack_tcp_timeout_close_wait=60")
shm = tempfile.mkdtemp(prefix="tcto-ab-", dir="/dev/shm")
try:
    cmds = []  # (name, command line, state dir or None)
    for i, b in enumerate(bins):
        state = f"{shm}/{i}"
        env = dict(os.environ, TCTO_TUNE_STATE_DIR=state)
        for _ in range(history):
            subprocess.run(SEED.split(), check=True)
            subprocess.run([b, "apply", "--profile", "high-conn"], env=env,
                           stdout=subprocess.DEVNULL, check=True)
        cmds.append((f"{i}: {b}", f"{b} apply --profile high-conn", state))
    cmds.append(("sysctl -w", WRITE, None))
    times = {name: [] for name, _, _ in cmds}
    out = f"{shm}/round.json"
    for _ in range(rounds):
        random.shuffle(cmds)
        for name, line, state in cmds:
            env = dict(os.environ)
            if state:
                env["TCTO_TUNE_STATE_DIR"] = state
            subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", "3",
                            "--runs", str(runs), "--prepare", SEED,
                            "--export-json", out, line],
                           env=env, stdout=subprocess.DEVNULL, check=True)
            times[name] += json.load(open(out))["results"][0]["times"]
    base = statistics.median(times["sysctl -w"])
    print(f"{rounds} rounds of {runs} runs (hyperfine -N), {history} earlier transactions, load {os.getloadavg()[0]:.2f}")
    print("| command | median ms | p25 ms | p75 ms | ratio to sysctl -w (median) |")
    print("|---|---:|---:|---:|---:|")
    for name in sorted(times):
        t = times[name]
        q = statistics.quantiles(t, n=4)
        m = statistics.median(t)
        print(f"| {name} | {m*1e3:.3f} | {q[0]*1e3:.3f} | {q[2]*1e3:.3f} | {m/base:.2f} |")
finally:
    shutil.rmtree(shm, ignore_errors=True)
PY
