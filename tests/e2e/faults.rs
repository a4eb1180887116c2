//! Every fault point of a representative plan, with the real kernel: a
//! plan that spans sysctls, the NOTRACK table and a NIC offload, with a
//! refused write, a write that reads back different, or a crash injected
//! at each step in turn (test-only fault points, feature
//! `fault-injection`). After the automatic rollback, or the user's
//! `rollback` after a crash, `sysctl`, `nft list ruleset` and `ethtool -k`
//! show exactly what they showed before.

use tcto_tune_tests::{in_netns, require_root, TempDir};

const PROFILE: &str = "name = \"faults\"\n[backlog]\nsomaxconn = 3000\n[conntrack]\ntcp_timeout_established = 7440\n[[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n[[offload]]\niface = \"a\"\ntso = false\n";

#[test]
fn every_step_of_a_mixed_plan_survives_every_fault() {
    if !require_root("every_step_of_a_mixed_plan_survives_every_fault") {
        return;
    }
    let dir = TempDir::new("faults");
    let d = dir.path();
    std::fs::write(format!("{d}/p.toml"), PROFILE).unwrap();
    let script = format!(
        r#"ip link add name a type veth peer name b && ip link set a up && ip link set b up
sysctl -qw net.core.somaxconn=1024 net.netfilter.nf_conntrack_tcp_timeout_established=432000
snap() {{ sysctl -n net.core.somaxconn net.netfilter.nf_conntrack_tcp_timeout_established; nft list ruleset; ethtool -k a | grep -E '^(tcp-segmentation-offload|generic-receive-offload):'; }}
snap > {d}/before
steps=$(tcto-tune --json plan --profile {d}/p.toml --allow offload-cpu-cost | grep -c '"target": {{')
echo "steps=$steps"
runs=0
for n in $(seq 1 "$steps"); do
  for kind in REFUSE READBACK CRASH; do
    st={d}/s-$kind-$n
    case $kind in
      REFUSE) TCTO_TUNE_FAULT_REFUSE_AT=$n tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1; rc=$?; want=1 ;;
      READBACK) TCTO_TUNE_FAULT_READBACK_AT=$n tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1; rc=$?; want=1 ;;
      CRASH) TCTO_TUNE_FAULT_CRASH_AFTER=$n tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1; rc=$?; want=134
             tcto-tune --state-dir $st rollback >>{d}/out 2>&1 || {{ echo "rollback failed $kind $n"; cat {d}/out; }} ;;
    esac
    [ "$rc" = "$want" ] || {{ echo "bad exit $rc for $kind at $n"; cat {d}/out; }}
    snap > {d}/after
    cmp -s {d}/before {d}/after || {{ echo "state differs after $kind at $n"; diff {d}/before {d}/after; cat {d}/out; }}
    runs=$((runs + 1))
  done
done
echo "runs=$runs"
"#
    );
    let r = in_netns(&script);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("steps=4"),
        "the plan spans 2 sysctls, the table and an offload: {r}"
    );
    assert!(r.stdout.contains("runs=12"), "{r}");
    assert!(
        !r.stdout.contains("differs")
            && !r.stdout.contains("bad exit")
            && !r.stdout.contains("rollback failed"),
        "{r}"
    );
    eprintln!("real-kernel fault points: 4 steps x 3 faults = 12, all restored");
}
