//! End-to-end tests of the backend against the kernel, each in a fresh
//! network namespace: what we write is what `nft list ruleset` prints and
//! what we read back, refusals are named, foreign content is refused, and
//! other tables' filter chains are decoded.
//!
//! Kept in one file because every test goes through the whole backend
//! (write, read back, compare), not through one of its parts.

use std::io;
use std::process::Command;

use nftnl::nftnl_sys::libc;

use super::write::Mode;
use super::Nft;
use crate::notrack::stateful::findings;
use crate::notrack::{FilterChain, NotrackTable, ScopedFlow};

/// Run `f` on a thread moved into a fresh network namespace (the
/// host's namespace is never touched); `None` when that is not
/// possible here (not root), which fails under CI=true.
fn in_own_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let why = io::Error::last_os_error();
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot unshare a network namespace under CI: {why}"
            );
            eprintln!("skipped: cannot unshare a network namespace: {why}");
            return None;
        }
        Some(f())
    })
    .join()
    .expect("test thread")
}

fn nft(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nft runs");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nft {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_c_table_name_is_the_table_name() {
    assert_eq!(super::TABLE_CNAME.to_str(), Ok(crate::notrack::TABLE_NAME));
}

fn flows() -> Vec<ScopedFlow> {
    vec![
        ScopedFlow {
            from: "10.0.1.0/24".parse().unwrap(),
            to: "10.0.2.0/25".parse().unwrap(),
            port: 8080,
        },
        ScopedFlow {
            from: "fd00:1::/64".parse().unwrap(),
            to: "fd00:2::7/128".parse().unwrap(),
            port: 443,
        },
    ]
}

#[test]
fn writes_exactly_what_nft_lists_and_reads_it_back() {
    in_own_netns(|| {
        let t = NotrackTable::for_flows(&flows());
        Nft.write_table(Some(&t)).unwrap();
        assert_eq!(nft(&["list", "ruleset"], None), t.to_nft());
        assert_eq!(Nft.read_table().unwrap(), Some(t.clone()));
        // Idempotent: the same batch again leaves one copy.
        Nft.write_table(Some(&t)).unwrap();
        assert_eq!(nft(&["list", "ruleset"], None), t.to_nft());
        // Removing, and removing what is absent.
        Nft.write_table(None).unwrap();
        assert_eq!(nft(&["list", "ruleset"], None), "");
        Nft.write_table(None).unwrap();
        assert_eq!(Nft.read_table().unwrap(), None);
    });
}

#[test]
fn a_refused_message_is_named_and_nothing_is_half_applied() {
    in_own_netns(|| {
        let t = NotrackTable::for_flows(&flows());
        Nft.write_table(Some(&t)).unwrap();
        let before = nft(&["list", "ruleset"], None);
        // The exclusive create, against a table that exists: the
        // kernel refuses its first message, the whole batch goes.
        let other = NotrackTable::for_flows(&flows()[..1]);
        let e = Nft.send_batch_for(Some(&other), Mode::Create).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
        assert_eq!(
            e.to_string(),
            "nftables: cannot add table inet tcto_tune",
            "{e:?}"
        );
        assert_eq!(nft(&["list", "ruleset"], None), before);
        // send_table falls back to replacing.
        Nft.write_table(Some(&other)).unwrap();
        assert_eq!(nft(&["list", "ruleset"], None), other.to_nft());
    });
}

#[test]
fn foreign_content_is_read_named_with_its_handle_and_never_written_back() {
    in_own_netns(|| {
        nft(
            &["-f", "-"],
            Some(
                "table inet tcto_tune {
                    set mine { type ipv4_addr; }
                    chain prerouting { type filter hook prerouting priority raw; policy accept;
                        tcp dport 22 accept
                    }
                    chain extra { counter; }
                }",
            ),
        );
        let t = Nft.read_table().unwrap().unwrap();
        let what: Vec<&str> = t.foreign.iter().map(|f| f.what.as_str()).collect();
        assert_eq!(what.len(), 3, "{what:?}");
        assert!(
            what[0].starts_with("rule `tcp dport 22 accept` in chain prerouting (handle "),
            "{what:?}"
        );
        assert_eq!(what[1], "chain `extra` (1 rule(s))");
        assert_eq!(what[2], "set `mine`");
        // The removal command runs as printed and removes only that rule.
        let rm = &t.foreign[0].remove;
        let args: Vec<&str> = rm.split_whitespace().skip(1).collect();
        nft(&args, None);
        let t2 = Nft.read_table().unwrap().unwrap();
        assert_eq!(t2.foreign.len(), 2, "{:?}", t2.foreign);
        // A document holding foreign content is never written back.
        let e = Nft.write_table(Some(&t2)).unwrap_err();
        assert!(
            e.to_string().contains("cannot write back chain `extra`"),
            "{e}"
        );
    });
}

#[test]
fn decodes_other_tables_filter_chains() {
    in_own_netns(|| {
        nft(
            &["-f", "-"],
            Some(
                "table inet filter {
                    chain input { type filter hook input priority filter; policy drop;
                        ct state established,related accept
                        ct state new tcp dport 8080 accept; }
                    chain fw { type filter hook forward priority 0; policy accept; }
                    chain helper { tcp dport 22 accept; }
                }
                table ip nat { chain pre { type nat hook prerouting priority dstnat; }; }",
            ),
        );
        let chains = Nft.read_filter_chains().unwrap();
        let labels: Vec<String> = chains.iter().map(FilterChain::label).collect();
        // The base chains and the regular chain they may jump to; not nat.
        assert_eq!(
            labels,
            ["inet filter input", "inet filter fw", "inet filter helper"]
        );
        assert_eq!(chains[2].hook, "");
        let input = &chains[0];
        assert_eq!(input.policy, "drop");
        assert_eq!(
            input.rules[0].to_string(),
            "ct state established,related accept"
        );
        assert_eq!(
            input.rules[1].to_string(),
            "tcp dport 8080 ct state new accept"
        );
        assert_eq!(findings(&chains, &flows()[..1]).len(), 1);
        nft(
            &[
                "insert",
                "rule",
                "inet",
                "filter",
                "input",
                "ct",
                "state",
                "untracked",
                "accept",
            ],
            None,
        );
        let chains = Nft.read_filter_chains().unwrap();
        assert!(findings(&chains, &flows()[..1]).is_empty());
    });
}

#[test]
fn many_flows_go_into_sets_that_nft_lists_and_we_read_back() {
    in_own_netns(|| {
        let mut flows: Vec<ScopedFlow> = (0..40u16)
            .map(|i| ScopedFlow {
                from: format!("10.1.{i}.0/24").parse().unwrap(),
                to: "10.0.2.0/25".parse().unwrap(),
                port: 8000 + i,
            })
            .collect();
        flows.push(ScopedFlow {
            from: "fd00:1::/64".parse().unwrap(),
            to: "fd00:2::7/128".parse().unwrap(),
            port: 443,
        });
        let t = NotrackTable::for_flows(&flows);
        assert_eq!(t.rule_count(), 4);
        Nft.write_table(Some(&t)).unwrap();
        let listed = nft(&["list", "ruleset"], None);
        for line in [
            "type ipv4_addr . ipv4_addr . inet_service",
            "type ipv6_addr . ipv6_addr . inet_service",
            "flags interval",
            "10.1.0.0/24 . 10.0.2.0/25 . 8000",
            "10.1.39.0/24 . 10.0.2.0/25 . 8039",
            "fd00:1::/64 . fd00:2::7 . 443",
            "ip saddr . ip daddr . tcp dport @flows4 notrack",
            "ip daddr . ip saddr . tcp sport @flows4 notrack",
            "ip6 saddr . ip6 daddr . tcp dport @flows6 notrack",
            "ip6 daddr . ip6 saddr . tcp sport @flows6 notrack",
        ] {
            assert!(listed.contains(line), "{line} missing in\n{listed}");
        }
        assert_eq!(Nft.read_table().unwrap(), Some(t.clone()));
        assert_eq!(listed, t.to_nft());
        // Back to per-flow rules: the sets go with the table.
        let small = NotrackTable::for_flows(&flows[..1]);
        Nft.write_table(Some(&small)).unwrap();
        assert_eq!(nft(&["list", "ruleset"], None), small.to_nft());
    });
}

#[test]
fn reads_jumps_gotos_and_route_chains_as_the_walk_needs_them() {
    in_own_netns(|| {
        nft(
            &["-f", "-"],
            Some(
                "table inet filter {
                    chain input { type filter hook input priority filter; policy drop;
                        iif \"lo\" accept
                        counter jump ufw-before-input; }
                    chain ufw-before-input {
                        ct state established,related accept
                        tcp dport 8080 ct state new accept; }
                }
                table ip mangle {
                    chain out { type route hook output priority mangle; policy drop;
                        goto deny; }
                    chain deny { ct state established accept; }
                }",
            ),
        );
        let chains = Nft.read_filter_chains().unwrap();
        let input = chains.iter().find(|c| c.name == "input").unwrap();
        assert_eq!(input.rules[0].to_string(), "iif \"lo\" accept");
        assert_eq!(input.rules[1].to_string(), "counter jump ufw-before-input");
        let out = chains.iter().find(|c| c.name == "out").unwrap();
        assert_eq!((out.kind.as_str(), out.hook.as_str()), ("route", "output"));
        let f = findings(&chains, &flows()[..1]);
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(f.len(), 2, "{msgs:#?}");
        assert!(
            msgs[0].contains("through input -> ufw-before-input"),
            "{msgs:#?}"
        );
        assert!(msgs[1].contains("chain `ip mangle out`"), "{msgs:#?}");
        assert!(msgs[1].contains("through out -> deny"), "{msgs:#?}");
    });
}

/// 33 flows (set mode) holding the pair, crossing: the first
/// element's range holds the second's start key.
fn crossing_set_flows() -> Vec<ScopedFlow> {
    let mut flows: Vec<ScopedFlow> = (0..31u16)
        .map(|i| ScopedFlow {
            from: format!("10.9.{i}.0/24").parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port: 8080,
        })
        .collect();
    flows.push(ScopedFlow {
        from: "10.0.0.0/15".parse().unwrap(),
        to: "10.0.0.0/24".parse().unwrap(),
        port: 8080,
    });
    flows.push(ScopedFlow {
        from: "10.1.0.0/16".parse().unwrap(),
        to: "10.0.0.0/22".parse().unwrap(),
        port: 8080,
    });
    flows
}

#[test]
fn the_simulated_host_refuses_overlapping_set_elements_as_the_kernel_does() {
    use crate::change::{Target, Value};
    use crate::system::{Effects, SimEffects};
    let t = NotrackTable::for_flows(&crossing_set_flows());
    let target = Target::notrack_table();
    let e = SimEffects::default()
        .write(&target, &Value::Table(t.clone()))
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
    assert!(
        e.to_string()
            .starts_with("nftables: cannot add elements to set flows4"),
        "{e}"
    );
    let kernel = in_own_netns(move || {
        Nft.write_table(Some(&t))
            .map_err(|e| (e.errno(), e.to_string()))
    });
    if let Some(kernel) = kernel {
        let (errno, text) = kernel.unwrap_err();
        assert_eq!(errno, Some(libc::EEXIST), "{text}");
        assert_eq!(text, "nftables: cannot add elements to set flows4");
    }
    // The contained pair (10.0.0.0/15 and 10.1.0.0/16 to one
    // server), settled first, is written by both; unsettled, both refuse.
    let mut flows = crossing_set_flows();
    flows.truncate(31);
    for from in ["10.0.0.0/15", "10.1.0.0/16", "10.20.0.0/16", "10.21.0.0/16"] {
        flows.push(ScopedFlow {
            from: from.parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port: 8080,
        });
    }
    let raw = NotrackTable::for_flows(&flows);
    assert!(SimEffects::default()
        .write(&target, &Value::Table(raw.clone()))
        .is_err());
    let settled = crate::notrack::overlap::settle(&flows).flows;
    assert_eq!(settled.len(), 34);
    let t = NotrackTable::for_flows(&settled);
    assert!(!t.sets.is_empty());
    SimEffects::default()
        .write(&target, &Value::Table(t.clone()))
        .unwrap();
    in_own_netns(move || {
        let e = Nft.write_table(Some(&raw)).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
        Nft.write_table(Some(&t)).unwrap();
    });
}

#[test]
fn tagged_parts_rules_and_per_profile_sets_are_what_nft_lists_and_read_back() {
    use crate::notrack::table::Part;
    in_own_netns(|| {
        let big: Vec<ScopedFlow> = (0..40u16)
            .map(|i| ScopedFlow {
                from: format!("10.1.{i}.0/24").parse().unwrap(),
                to: "10.0.2.0/25".parse().unwrap(),
                port: 8000,
            })
            .collect();
        let t = NotrackTable::for_parts(&[
            Part {
                profile: Some("trusted-notrack".into()),
                flows: flows(),
            },
            Part {
                profile: Some("many.v2".into()),
                flows: big,
            },
            Part {
                profile: None,
                flows: vec![ScopedFlow {
                    from: "10.7.0.0/16".parse().unwrap(),
                    to: "10.0.2.0/25".parse().unwrap(),
                    port: 22,
                }],
            },
        ]);
        Nft.write_table(Some(&t)).unwrap();
        let listed = nft(&["list", "ruleset"], None);
        assert_eq!(listed, t.to_nft());
        for line in [
            "set flows4-many.v2 {",
            "ip saddr . ip daddr . tcp dport @flows4-many.v2 notrack comment \"many.v2\"",
            "ip saddr 10.0.1.0/24 ip daddr 10.0.2.0/25 tcp dport 8080 notrack comment \"trusted-notrack\"",
            "ip saddr 10.7.0.0/16 ip daddr 10.0.2.0/25 tcp dport 22 notrack\n",
        ] {
            assert!(listed.contains(line), "{line} missing in\n{listed}");
        }
        assert_eq!(Nft.read_table().unwrap(), Some(t.clone()));
        assert_eq!(NotrackTable::for_parts(&t.parts()), t);
        // A comment that is not a tag we write is foreign.
        nft(
            &[
                "add",
                "rule",
                "inet",
                "tcto_tune",
                "output",
                "ip",
                "saddr",
                "10.0.2.0/25",
                "tcp",
                "sport",
                "22",
                "ip",
                "daddr",
                "10.7.0.0/16",
                "notrack",
                "comment",
                "\"x y\"",
            ],
            None,
        );
        let back = Nft.read_table().unwrap().unwrap();
        assert_eq!(back.foreign.len(), 1, "{:?}", back.foreign);
        assert!(
            back.foreign[0]
                .what
                .contains("notrack comment \"x y\"` in chain output"),
            "{:?}",
            back.foreign
        );
    });
}

#[test]
fn ct_state_sets_and_verdict_maps_are_read_and_decided() {
    in_own_netns(|| {
        nft(
            &["-f", "-"],
            Some(
                "table inet wiki {
                    chain input { type filter hook input priority filter; policy drop;
                        ct state vmap { established : accept, related : accept, invalid : drop }
                        tcp dport 8080 ct state new accept
                    }
                }
                table ip fw {
                    chain input { type filter hook input priority filter; policy drop;
                        ct state { established, related } accept
                        ct state { untracked } jump ok
                    }
                    chain ok { tcp dport 8080 accept; }
                }",
            ),
        );
        let chains = Nft.read_filter_chains().unwrap();
        let wiki = chains.iter().find(|c| c.table == "wiki").unwrap();
        // The kernel's element order is its own; the text lists them all.
        let text = wiki.rules[0].to_string();
        for part in ["established : accept", "related : accept", "invalid : drop"] {
            assert!(text.contains(part), "{text}");
        }
        let f = findings(&chains, &flows()[..1]);
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        // The wiki's vmap drops untracked packets (decided, not undecided);
        // the `ip fw` chain accepts them through its set and jump.
        assert_eq!(f.len(), 1, "{msgs:#?}");
        assert_eq!(f[0].code, "notrack-breaks-stateful-filter", "{msgs:#?}");
        assert!(msgs[0].contains("chain `inet wiki input`"), "{msgs:#?}");
        assert!(
            msgs[0].contains("accepted by rule `ct state vmap {"),
            "{msgs:#?}"
        );
    });
}
