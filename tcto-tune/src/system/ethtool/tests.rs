//! Layout of the ioctl structures against `<linux/ethtool.h>`, the
//! encoding of feature bits, and a read of `lo` compared with `ethtool -k`.

use std::mem::{offset_of, size_of};
use std::process::Command;

use super::*;
use crate::offload::{GroupState, GROUPS};

/// The numbers below, as the uapi header defines them (linux/ethtool.h).
#[test]
fn structs_match_the_uapi_layout() {
    assert_eq!(size_of::<EthtoolSsetInfo>(), 16);
    assert_eq!(offset_of!(EthtoolSsetInfo, cmd), 0);
    assert_eq!(offset_of!(EthtoolSsetInfo, reserved), 4);
    assert_eq!(offset_of!(EthtoolSsetInfo, sset_mask), 8);

    assert_eq!(size_of::<EthtoolGstrings>(), 12);
    assert_eq!(offset_of!(EthtoolGstrings, cmd), 0);
    assert_eq!(offset_of!(EthtoolGstrings, string_set), 4);
    assert_eq!(offset_of!(EthtoolGstrings, len), 8);

    assert_eq!(size_of::<EthtoolGetFeaturesBlock>(), 16);
    assert_eq!(offset_of!(EthtoolGetFeaturesBlock, available), 0);
    assert_eq!(offset_of!(EthtoolGetFeaturesBlock, requested), 4);
    assert_eq!(offset_of!(EthtoolGetFeaturesBlock, active), 8);
    assert_eq!(offset_of!(EthtoolGetFeaturesBlock, never_changed), 12);

    assert_eq!(size_of::<EthtoolGfeatures>(), 8);
    assert_eq!(offset_of!(EthtoolGfeatures, size), 4);
    assert_eq!(size_of::<EthtoolSetFeaturesBlock>(), 8);
    assert_eq!(offset_of!(EthtoolSetFeaturesBlock, requested), 4);
    assert_eq!(size_of::<EthtoolSfeatures>(), 8);
    assert_eq!(offset_of!(EthtoolSfeatures, size), 4);
    assert_eq!(size_of::<EthtoolPermAddr>(), 8);
    assert_eq!(offset_of!(EthtoolPermAddr, size), 4);
}

const PROBE: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/netdevice.h>
#define S(t) printf(#t " %zu\n", sizeof(struct t))
#define O(t, f) printf(#t "." #f " %zu\n", offsetof(struct t, f))
#define C(c) printf(#c " %lu\n", (unsigned long)(c))
int main(void) {
    S(ethtool_sset_info); O(ethtool_sset_info, reserved); O(ethtool_sset_info, sset_mask);
    O(ethtool_sset_info, data);
    S(ethtool_gstrings); O(ethtool_gstrings, string_set); O(ethtool_gstrings, len);
    O(ethtool_gstrings, data);
    S(ethtool_get_features_block); O(ethtool_get_features_block, requested);
    O(ethtool_get_features_block, active); O(ethtool_get_features_block, never_changed);
    S(ethtool_gfeatures); O(ethtool_gfeatures, size); O(ethtool_gfeatures, features);
    S(ethtool_set_features_block); O(ethtool_set_features_block, requested);
    S(ethtool_sfeatures); O(ethtool_sfeatures, size); O(ethtool_sfeatures, features);
    S(ethtool_perm_addr); O(ethtool_perm_addr, size); O(ethtool_perm_addr, data);
    C(ETHTOOL_GPERMADDR); C(MAX_ADDR_LEN);
    C(ETHTOOL_GSTRINGS); C(ETHTOOL_GSSET_INFO); C(ETHTOOL_GFEATURES); C(ETHTOOL_SFEATURES);
    C(ETH_SS_FEATURES); C(ETH_GSTRING_LEN); C(ETHTOOL_F_UNSUPPORTED); C(ETHTOOL_F_WISH);
    C(SIOCETHTOOL);
    return 0;
}
"#;

/// Compile a C probe against the installed header and compare every size,
/// offset and constant with ours. Needs `cc` and linux-libc-dev; without
/// them the test says so (and fails under `CI=true`).
#[test]
fn structs_and_constants_match_the_installed_header() {
    let dir = std::env::temp_dir().join(format!("tcto-ethtool-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, PROBE).unwrap();
    let built = Command::new("cc").arg(&src).arg("-o").arg(&exe).status();
    if !built.is_ok_and(|s| s.success()) {
        let _ = std::fs::remove_dir_all(&dir);
        let why = "skipped: `cc` with <linux/ethtool.h> is not available";
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
        eprintln!("{why}");
        return;
    }
    let out = Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8(out.stdout).unwrap();
    let c: std::collections::BTreeMap<&str, usize> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    let ours: &[(&str, usize)] = &[
        ("ethtool_sset_info", size_of::<EthtoolSsetInfo>()),
        (
            "ethtool_sset_info.reserved",
            offset_of!(EthtoolSsetInfo, reserved),
        ),
        (
            "ethtool_sset_info.sset_mask",
            offset_of!(EthtoolSsetInfo, sset_mask),
        ),
        ("ethtool_sset_info.data", size_of::<EthtoolSsetInfo>()),
        ("ethtool_gstrings", size_of::<EthtoolGstrings>()),
        (
            "ethtool_gstrings.string_set",
            offset_of!(EthtoolGstrings, string_set),
        ),
        ("ethtool_gstrings.len", offset_of!(EthtoolGstrings, len)),
        ("ethtool_gstrings.data", size_of::<EthtoolGstrings>()),
        (
            "ethtool_get_features_block",
            size_of::<EthtoolGetFeaturesBlock>(),
        ),
        (
            "ethtool_get_features_block.requested",
            offset_of!(EthtoolGetFeaturesBlock, requested),
        ),
        (
            "ethtool_get_features_block.active",
            offset_of!(EthtoolGetFeaturesBlock, active),
        ),
        (
            "ethtool_get_features_block.never_changed",
            offset_of!(EthtoolGetFeaturesBlock, never_changed),
        ),
        ("ethtool_gfeatures", size_of::<EthtoolGfeatures>()),
        ("ethtool_gfeatures.size", offset_of!(EthtoolGfeatures, size)),
        ("ethtool_gfeatures.features", size_of::<EthtoolGfeatures>()),
        (
            "ethtool_set_features_block",
            size_of::<EthtoolSetFeaturesBlock>(),
        ),
        (
            "ethtool_set_features_block.requested",
            offset_of!(EthtoolSetFeaturesBlock, requested),
        ),
        ("ethtool_sfeatures", size_of::<EthtoolSfeatures>()),
        ("ethtool_sfeatures.size", offset_of!(EthtoolSfeatures, size)),
        ("ethtool_sfeatures.features", size_of::<EthtoolSfeatures>()),
        ("ethtool_perm_addr", size_of::<EthtoolPermAddr>()),
        ("ethtool_perm_addr.size", offset_of!(EthtoolPermAddr, size)),
        ("ethtool_perm_addr.data", size_of::<EthtoolPermAddr>()),
        ("ETHTOOL_GPERMADDR", ETHTOOL_GPERMADDR as usize),
        ("MAX_ADDR_LEN", MAX_ADDR_LEN),
        ("ETHTOOL_GSTRINGS", ETHTOOL_GSTRINGS as usize),
        ("ETHTOOL_GSSET_INFO", ETHTOOL_GSSET_INFO as usize),
        ("ETHTOOL_GFEATURES", ETHTOOL_GFEATURES as usize),
        ("ETHTOOL_SFEATURES", ETHTOOL_SFEATURES as usize),
        ("ETH_SS_FEATURES", ETH_SS_FEATURES as usize),
        ("ETH_GSTRING_LEN", ETH_GSTRING_LEN),
        ("ETHTOOL_F_UNSUPPORTED", ETHTOOL_F_UNSUPPORTED as usize),
        ("ETHTOOL_F_WISH", ETHTOOL_F_WISH as usize),
        ("SIOCETHTOOL", libc::SIOCETHTOOL as usize),
    ];
    for (name, value) in ours {
        assert_eq!(c.get(name), Some(value), "{name}: header vs ours\n{text}");
    }
    assert_eq!(c.len(), ours.len(), "{text}");
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn decode_reads_bits_across_words_and_marks_fixed_features() {
    // 34 names: bit 33 lives in the second word.
    let mut all: Vec<String> = (0..34).map(|i| format!("f{i}")).collect();
    all[1] = "rx-gro".into();
    all[2] = String::new(); // unnamed bit: left out
    all[33] = "rx-lro".into();
    let blocks = [
        EthtoolGetFeaturesBlock {
            available: 0b0011,
            requested: 0b0010,
            active: 0b0110,
            never_changed: 0b0001,
        },
        EthtoolGetFeaturesBlock {
            available: 0,
            requested: 0,
            active: 0b10,
            never_changed: 0,
        },
    ];
    let f = decode(&all, &blocks);
    assert_eq!(f["f0"], FeatureState::fixed(false)); // never_changed
    assert_eq!(f["rx-gro"], FeatureState::changeable(true));
    assert!(!f.contains_key(""));
    assert_eq!(f["rx-lro"], FeatureState::fixed(true)); // not available
    assert_eq!(f.len(), 33);
}

#[test]
fn encode_sets_valid_and_requested_bits() {
    let mut all = names(&["a", "b"]);
    all.extend((2..40).map(|i| format!("f{i}")));
    let b = encode(
        &all,
        &[("b".into(), true), ("f35".into(), false)],
        all.len().div_ceil(32),
    )
    .unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].valid, b[0].requested), (0b10, 0b10));
    assert_eq!((b[1].valid, b[1].requested), (1 << 3, 0));
    assert!(encode(&all, &[("nope".into(), true)], 2).is_err());
    assert!(encode(&all, &[("f35".into(), true)], 1).is_err());
}

#[test]
fn a_missing_interface_reads_as_none() {
    let name = IfName::new("tcto-no-such0").unwrap();
    assert_eq!(LinuxOffloads.features(&name).unwrap(), None);
}

/// `ethtool -k` lines as `name -> (on, fixed)`.
fn ethtool_k(iface: &str) -> Option<std::collections::BTreeMap<String, (bool, bool)>> {
    let out = Command::new("ethtool").arg("-k").arg(iface).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.trim().split_once(": ")?;
                Some((
                    name.to_owned(),
                    (rest.starts_with("on"), rest.contains("[fixed]")),
                ))
            })
            .collect(),
    )
}

/// Reading (never writing) the host's `lo` agrees with `ethtool -k lo`,
/// feature by feature and for the four groups.
#[test]
fn reading_lo_agrees_with_ethtool() {
    let Some(oracle) = ethtool_k("lo") else {
        let why = "skipped: `ethtool` is not installed";
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
        eprintln!("{why}");
        return;
    };
    let ours = LinuxOffloads
        .features(&IfName::new("lo").unwrap())
        .unwrap()
        .expect("lo exists");
    let mut compared = 0;
    for (name, state) in &ours {
        if let Some(&(on, fixed)) = oracle.get(name) {
            assert_eq!((state.on, state.fixed), (on, fixed), "{name}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} features compared");
    for g in GROUPS {
        let st = GroupState::of(g, &ours);
        assert_eq!(
            Some(st.on),
            oracle.get(g.long_name).map(|s| s.0),
            "{}",
            g.user
        );
    }
    assert!(!LinuxOffloads.interfaces().unwrap().is_empty());
}

#[test]
fn permanent_addresses_print_as_ip_link_does_and_zeros_are_none() {
    assert_eq!(
        mac_text(&[0x52, 0x54, 0, 0x12, 0x34, 0xab]).as_deref(),
        Some("52:54:00:12:34:ab")
    );
    assert_eq!(mac_text(&[0; 6]), None);
    assert_eq!(mac_text(&[]), None);
}

/// `lo` as the kernel names it here: its ifindex (1 in every namespace),
/// the name back from the index, no permanent address, and a scope.
#[test]
fn lo_has_an_ifindex_and_no_permanent_address() {
    let lo = IfName::new("lo").unwrap();
    let id = LinuxOffloads.device(&lo).unwrap().expect("lo exists");
    assert_eq!(id.perm_addr, None);
    assert_eq!(
        LinuxOffloads.name_of(id.ifindex).unwrap().as_deref(),
        Some("lo")
    );
    assert!(id
        .scope
        .is_some_and(|s| s.netns > 0 && s.boot_id.len() == 36));
    assert_eq!(
        LinuxOffloads
            .device(&IfName::new("nosuchif0").unwrap())
            .unwrap(),
        None
    );
    assert_eq!(LinuxOffloads.name_of(u32::MAX).unwrap(), None);
}
