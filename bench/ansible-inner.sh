#!/usr/bin/env bash
# Run by bench/ansible.sh inside `unshare -n` (it refuses to run in the
# initial network namespace, since it sets sysctls).
#   ansible-inner.sh VENV_BIN MODULE OUT RUNS REPO
set -euo pipefail
VENV=$1 MOD=$2 OUT=$3 RUNS=$4 REPO=$5
# A fresh `unshare -n` namespace holds only `lo`; the host has more.
# (Read whole first: `grep -q` in a pipe under pipefail can fail on SIGPIPE.)
links=$(ip -o link show)
if grep -qv ': lo:' <<<"$links"; then
  echo "ansible-inner.sh: refusing to run in the host's network namespace; run bench/ansible.sh" >&2
  exit 1
fi
W=$(mktemp -d /tmp/tcto-bench-ansible-XXXX)
trap 'rm -rf "$W"' EXIT
ip link set lo up
mkdir -p "$W/lib" "$W/s"
cp "$MOD" "$W/lib/tcto_tune"
cp "$REPO/tcto-tune-ansible/library/tcto_tune.yml" "$W/lib/"
: >"$W/ansible.cfg"
export PATH="$VENV:$PATH" ANSIBLE_CONFIG="$W/ansible.cfg" ANSIBLE_LIBRARY="$W/lib"
export ANSIBLE_HOME="$W/home" ANSIBLE_LOCAL_TEMP="$W/tmp" ANSIBLE_REMOTE_TMP="$W/rtmp"
export ANSIBLE_PYTHON_INTERPRETER="$VENV/python" ANSIBLE_NOCOLOR=1

printf '%s\n' \
  "- hosts: all" \
  "  gather_facts: false" \
  "  tasks:" \
  "    - tcto_tune:" \
  "        profile: high-conn" \
  "        state_dir: $W/s" >"$W/tcto.yml"
printf '%s\n' \
  "- hosts: all" \
  "  gather_facts: false" \
  "  tasks:" \
  "    - ansible.posix.sysctl:" \
  "        name: \"{{ item.0 }}\"" \
  "        value: \"{{ item.1 }}\"" \
  "        sysctl_set: true" \
  "        reload: false" \
  "        sysctl_file: $W/sysctl.conf" \
  "      loop:" \
  "        - [net.core.somaxconn, \"4096\"]" \
  "        - [net.ipv4.tcp_max_syn_backlog, \"8192\"]" \
  "        - [net.netfilter.nf_conntrack_tcp_timeout_established, \"7440\"]" \
  "        - [net.netfilter.nf_conntrack_tcp_timeout_time_wait, \"60\"]" \
  "        - [net.netfilter.nf_conntrack_tcp_timeout_close_wait, \"60\"]" >"$W/posix.yml"
# The prior values every timed run starts from (this namespace only).
printf '%s\n' \
  "sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=2048 net.netfilter.nf_conntrack_tcp_timeout_established=432000 net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 net.netfilter.nf_conntrack_tcp_timeout_close_wait=120" \
  "rm -f $W/sysctl.conf" >"$W/reset"
printf '{"profile": "high-conn", "state_dir": "%s", "_ansible_check_mode": true}\n' "$W/s" >"$W/args.json"

# Both really change all five keys: checked once, outside the timing.
check() {
  sh "$W/reset"
  ansible-playbook -i localhost, -c local "$W/$1" >"$W/$1.log"
  grep -q 'changed=1' "$W/$1.log" || { cat "$W/$1.log" >&2; echo "$1 changed nothing" >&2; exit 1; }
  echo "$1: $(sysctl -n net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_time_wait net.netfilter.nf_conntrack_tcp_timeout_close_wait | tr '\n' ' ')"
}
check tcto.yml
check posix.yml
sh "$W/reset"

hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/ansible-check.json" --prepare "sh $W/reset" \
  -n "tcto_tune --check" "ansible-playbook -i localhost, -c local $W/tcto.yml --check" \
  -n "ansible.posix.sysctl --check" "ansible-playbook -i localhost, -c local $W/posix.yml --check"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/ansible-apply.json" --prepare "sh $W/reset" \
  -n "tcto_tune" "ansible-playbook -i localhost, -c local $W/tcto.yml" \
  -n "ansible.posix.sysctl" "ansible-playbook -i localhost, -c local $W/posix.yml"
hyperfine -N --warmup 5 --runs 100 --export-json "$OUT/ansible-module.json" \
  -n "tcto_tune module alone, check mode" "$W/lib/tcto_tune $W/args.json"
