#!/usr/bin/env bash
# Benchmark for the Ansible module (issue 14; not run in CI). One
# `ansible-playbook -i localhost, -c local` run that sets the five sysctls
# high-conn changes in a network namespace:
#   tcto_tune              one task: profile high-conn (plan, checks,
#                          journaled transaction with read-back)
#   ansible.posix.sysctl   one task looping over the same five keys and
#                          values (sysctl_set: true, writing a sysctl file
#                          under the bench's temp dir, reload: false)
# each in check mode and applying (every run starts from the same prior
# values), in the same hyperfine run; plus the module process alone, and
# its size. Everything that writes runs inside `unshare -n`: the host's
# settings are never touched.
# Needs root, hyperfine, and PyPI (scripts/ansible-venv --bench installs
# ansible-core and the `ansible` package, which ships ansible.posix).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cargo build -q --release -p tcto-tune-ansible
VENV=$(scripts/ansible-venv --bench)
MOD=$PWD/target/release/tcto_tune
RUNS=${RUNS:-10}

size=$(stat -c %s "$MOD")
strip -o "$OUT/tcto_tune.stripped" "$MOD"
stripped=$(stat -c %s "$OUT/tcto_tune.stripped")
libs=$(ldd "$MOD" | awk '{print $1}' | grep -E 'nftnl|mnl' | tr '\n' ' ')
echo "module binary: $((size / 1024)) KiB ($((stripped / 1024)) KiB stripped); links $libs"

# The namespace script is a separate file so that nothing in it can ever
# run in the host's namespace by accident.
unshare -n bash "$(dirname "$0")/ansible-inner.sh" "$VENV" "$MOD" "$OUT" "$RUNS" "$PWD"

echo "== playbook, check mode"
median_table "$OUT/ansible-check.json" 1 "ansible.posix.sysctl --check"
echo "== playbook, applying"
median_table "$OUT/ansible-apply.json" 1 "ansible.posix.sysctl"
echo "== the module process alone"
median_table "$OUT/ansible-module.json" 0 "itself"
