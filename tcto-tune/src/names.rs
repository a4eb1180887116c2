//! Validated names and addresses: sysctl keys, interface names, subnets, ports.
//!
//! Every string that reaches the kernel (a `/proc/sys` path, an ioctl's
//! interface name, a netlink attribute) passes through one of these types
//! first. Validation happens once, at the edge, so the rest of the crate can
//! rely on the invariant instead of re-checking (or forgetting to).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name or address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A sysctl key that is not a plain dotted name.
    #[error("invalid sysctl name `{name}`: {why}")]
    Sysctl {
        /// The rejected name (escaped for display).
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An interface name the kernel would refuse.
    #[error("invalid interface name `{name}`: {why}")]
    Interface {
        /// The rejected name (escaped for display).
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A subnet that is not `ADDRESS/PREFIX` with no host bits set.
    #[error("invalid subnet `{text}`: {why}")]
    Subnet {
        /// The rejected text (escaped for display).
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// A TCP port outside 1..=65535.
    #[error("invalid port `{text}`: expected a number from 1 to 65535")]
    Port {
        /// The rejected text (escaped for display).
        text: String,
    },
}

fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// A sysctl key such as `net.core.somaxconn`: dot-separated segments of
/// `[a-z0-9_-]`, no empty segment, no `/`, at most 255 bytes.
///
/// Interface names inside keys (`net.ipv4.conf.eth0.rp_filter`) are allowed
/// as segments; ones that contain dots cannot be expressed (every `.` becomes
/// `/` in the /proc/sys path), and are rejected by the segment rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SysctlName(String);

impl SysctlName {
    /// Validate `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let err = |why| NameError::Sysctl {
            name: shown(name),
            why,
        };
        if name.is_empty() {
            return Err(err("empty"));
        }
        if name.len() > 255 {
            return Err(err("longer than 255 bytes"));
        }
        if name.contains('/') {
            return Err(err("contains `/`; write keys with dots"));
        }
        if name.contains("..") {
            return Err(err("contains `..`"));
        }
        if name.starts_with('.') || name.ends_with('.') {
            return Err(err("starts or ends with `.`"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(err(
                "only lowercase letters, digits, `_`, `-` and `.` are allowed",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The dotted name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path below `/proc/sys` (dots become slashes).
    pub fn proc_path(&self) -> String {
        format!("/proc/sys/{}", self.0.replace('.', "/"))
    }
}

impl fmt::Display for SysctlName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SysctlName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for SysctlName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A network interface name as the kernel accepts it (`dev_valid_name`):
/// 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IfName(String);

impl IfName {
    /// Validate `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let err = |why| NameError::Interface {
            name: shown(name),
            why,
        };
        if name.is_empty() {
            return Err(err("empty"));
        }
        if name.len() > 15 {
            return Err(err("longer than 15 bytes (IFNAMSIZ)"));
        }
        if name == "." || name == ".." {
            return Err(err("`.` and `..` are not interface names"));
        }
        if name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(err("contains `/`, `:`, whitespace or a control character"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for IfName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// An IPv4 or IPv6 subnet in CIDR form with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Build from parts, rejecting host bits and out-of-range prefixes.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, NameError> {
        // Formatted only on error: profiles with 1,000 flows parse 2,000 subnets.
        let text = || format!("{addr}/{prefix}");
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(NameError::Subnet {
                text: text(),
                why: format!("prefix longer than {max} bits"),
            });
        }
        let c = Self { addr, prefix };
        if c.network() != addr {
            return Err(NameError::Subnet {
                text: text(),
                why: format!("host bits set; did you mean `{}/{prefix}`?", c.network()),
            });
        }
        Ok(c)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True for `0.0.0.0/0` and `::/0`: every address.
    pub fn is_any(&self) -> bool {
        self.prefix == 0
    }

    /// The address with the host bits cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// The mask bytes (4 or 16), network order.
    pub fn mask_bytes(&self) -> Vec<u8> {
        let (len, prefix) = (
            if self.is_ipv4() { 4 } else { 16 },
            usize::from(self.prefix),
        );
        (0..len)
            .map(|i| {
                let bits = prefix.saturating_sub(i * 8).min(8);
                if bits == 0 {
                    0
                } else {
                    0xffu8 << (8 - bits)
                }
            })
            .collect()
    }

    /// Whether `ip` lies inside this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                Cidr {
                    addr: ip,
                    prefix: self.prefix,
                }
                .network()
                    == self.addr
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A [`Cidr`] as text, `10.0.1.0/24`, formatted on the stack.
///
/// `core::fmt` spends ~40 instructions per octet (a `Formatter`, padding
/// checks, one `write_str` each): a 1,000-flow NOTRACK table prints and
/// serialises 4,000 subnets per run, so this direct form matters there.
#[derive(Clone, Copy)]
pub struct CidrText {
    buf: [u8; 43],
    len: u8,
}

impl CidrText {
    /// The whole text, `ADDRESS/PREFIX`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '.', ':', hex letters and '/' are ever written.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).expect("ASCII")
    }

    /// The address alone, without `/PREFIX`.
    pub fn addr(&self) -> &str {
        let s = self.as_str();
        s.rsplit_once('/').map_or(s, |(a, _)| a)
    }

    fn push(&mut self, b: u8) {
        self.buf[usize::from(self.len)] = b;
        self.len += 1;
    }

    fn push_dec(&mut self, n: u8) {
        if n >= 100 {
            self.push(b'0' + n / 100);
        }
        if n >= 10 {
            self.push(b'0' + n / 10 % 10);
        }
        self.push(b'0' + n % 10);
    }
}

impl fmt::Write for CidrText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = usize::from(self.len) + s.len();
        let dst = self
            .buf
            .get_mut(usize::from(self.len)..end)
            .ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

impl Cidr {
    /// This subnet as text, exactly as [`Display`](fmt::Display) prints it.
    pub fn text(&self) -> CidrText {
        let mut t = CidrText {
            buf: [0; 43],
            len: 0,
        };
        match self.addr {
            IpAddr::V4(a) => {
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        t.push(b'.');
                    }
                    t.push_dec(o);
                }
            }
            // The longest IPv6 text is 39 bytes: it always fits.
            IpAddr::V6(a) => fmt::Write::write_fmt(&mut t, format_args!("{a}")).expect("fits"),
        }
        t.push(b'/');
        t.push_dec(self.prefix);
        t
    }
}

impl FromStr for Cidr {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| NameError::Subnet {
            text: shown(s),
            why: why.to_owned(),
        };
        let Some((addr, prefix)) = s.split_once('/') else {
            // A bare address: say which subnet holds just that host.
            return Err(match s.parse::<IpAddr>() {
                Ok(ip) => bad(&format!(
                    "expected ADDRESS/PREFIX; for this one host write `{ip}/{}`",
                    if ip.is_ipv4() { 32 } else { 128 }
                )),
                Err(_) => bad("expected ADDRESS/PREFIX, e.g. `10.0.1.0/24`"),
            });
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the prefix must be a number of bits"));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("the prefix must be a number of bits"))?;
        Cidr::new(addr, prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than `String::deserialize`: no owned copy of the
        // text when the input can lend it (a journaled table holds
        // thousands); same errors, as it also expects "a string".
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Cidr, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Cidr, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => self.visit_str(s),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                }
            }
        }
        d.deserialize_string(V)
    }
}

/// Parse a TCP port, 1..=65535.
pub fn parse_port(text: &str) -> Result<u16, NameError> {
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 && text.trim() == text => Ok(p),
        _ => Err(NameError::Port { text: shown(text) }),
    }
}

/// Which network device an interface name stands for right now: a name
/// can be moved to another device (`ip link set dev a name aold`), an
/// ifindex is the device's own for its lifetime in the namespace, and a
/// permanent MAC (`ETHTOOL_GPERMADDR`, real NICs only) survives a driver
/// reload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NicId {
    /// The interface index.
    pub ifindex: u32,
    /// The permanent hardware address (`aa:bb:cc:dd:ee:ff`), when the
    /// device has one (a veth has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perm_addr: Option<String>,
    /// Where the ifindex means this device: the boot
    /// (`/proc/sys/kernel/random/boot_id`) and the network namespace
    /// (inode of `/proc/thread-self/ns/net`). `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<IfScope>,
}

/// The boot and network namespace an ifindex belongs to: ifindexes are
/// handed out again after a reboot, and each namespace counts its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IfScope {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// Inode number of the network namespace (`ip netns identify`, `net:[N]`).
    pub netns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_text_is_what_std_prints() {
        for (addr, prefix) in [
            ("0.0.0.0", 0),
            ("10.0.1.0", 24),
            ("100.64.0.0", 10),
            ("192.168.255.255", 32),
            ("255.255.255.255", 32),
            ("::", 0),
            ("::1", 128),
            ("2001:db8::", 32),
            ("fd00:1:2:3:4:5:6:0", 112),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128),
            ("::ffff:10.1.2.3", 128),
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            let c = Cidr::new(ip, prefix).unwrap();
            let text = c.text();
            assert_eq!(text.as_str(), format!("{ip}/{prefix}"));
            assert_eq!(text.addr(), ip.to_string());
            assert_eq!(c.to_string(), format!("{ip}/{prefix}"));
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json, serde_json::Value::String(format!("{ip}/{prefix}")));
            assert_eq!(serde_json::from_value::<Cidr>(json).unwrap(), c);
        }
        let err = serde_json::from_value::<Cidr>(serde_json::json!(5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn sysctl_names_reject_path_tricks() {
        for bad in [
            "",
            "net/core/somaxconn",
            "net..core",
            "../etc/passwd",
            ".net.core",
            "net.core.",
            "net.core.SOMAXCONN",
            "net.core.some\0thing",
            "net.core.a b",
        ] {
            assert!(SysctlName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(SysctlName::new(&"a".repeat(256)).is_err());
        let ok = SysctlName::new("net.ipv4.conf.eth-0.rp_filter").unwrap();
        assert_eq!(ok.proc_path(), "/proc/sys/net/ipv4/conf/eth-0/rp_filter");
    }

    #[test]
    fn interface_names_follow_kernel_rules() {
        for bad in ["", ".", "..", "a/b", "eth0:1", "a b", "sixteen-bytes-xx"] {
            assert!(IfName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(IfName::new("fifteen-bytes-x").is_ok());
        assert!(IfName::new("veth.100").is_ok());
    }

    #[test]
    fn subnets_reject_host_bits_and_bad_prefixes() {
        assert_eq!(
            "10.0.1.0/24".parse::<Cidr>().unwrap().to_string(),
            "10.0.1.0/24"
        );
        assert_eq!(
            "fd00::/64".parse::<Cidr>().unwrap().to_string(),
            "fd00::/64"
        );
        let e = "10.0.1.5/24".parse::<Cidr>().unwrap_err().to_string();
        assert!(
            e.contains("host bits set") && e.contains("10.0.1.0/24"),
            "{e}"
        );
        for bad in [
            "10.0.1.0",
            "10.0.1.0/33",
            "fd00::/129",
            "10.0.1.0/-1",
            "x/8",
            "10.0.1.0/ 8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().is_any());
    }

    #[test]
    fn cidr_masks_and_membership() {
        let c: Cidr = "10.0.0.0/12".parse().unwrap();
        assert_eq!(c.mask_bytes(), vec![255, 240, 0, 0]);
        assert!(c.contains("10.15.255.1".parse().unwrap()));
        assert!(!c.contains("10.16.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("8080").unwrap(), 8080);
        for bad in ["0", "65536", "-1", "80x", " 80", ""] {
            assert!(parse_port(bad).is_err(), "{bad:?} accepted");
        }
    }
}
