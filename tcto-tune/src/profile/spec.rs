//! The on-disk shape of a profile: serde types that mirror the TOML.
//!
//! These are deliberately loose where the TOML is loose (a value may be an
//! integer, a `"${variable}"` template or a `{ at_least = N }` table) and
//! strict everywhere else (`deny_unknown_fields`). They carry spans so that
//! a value that fails validation after variables are filled can still be
//! reported at its file, line and column.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::fix::Intent;

/// A scalar as written: an integer or a string that may hold `${var}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar {
    Int(i64),
    Str(String),
}

/// What `#[serde(untagged)]` said for anything else; kept word for word.
const NOT_A_SCALAR: &str = "data did not match any variant of untagged enum Scalar";

/// An integer beyond what any sysctl holds (the kernel's widest are
/// 64-bit signed), said in words rather than as a serde type error.
fn too_large<E: de::Error>(v: impl fmt::Display) -> E {
    E::custom(format_args!(
        "integer `{v}` is too large for any sysctl (at most {})",
        i64::MAX
    ))
}

/// By hand rather than `#[serde(untagged)]`: that buffered every value and
/// tried `i64` first, formatting a discarded "invalid type" error for each
/// string (20% of parsing a profile with 1,000 `[[notrack]]` tables).
/// Accepts and refuses exactly what the derived version did.
impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v).map(Scalar::Int).map_err(|_| too_large(v))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                i64::try_from(v).map(Scalar::Int).map_err(|_| too_large(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                i64::try_from(v).map(Scalar::Int).map_err(|_| too_large(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Scalar, E> {
                std::str::from_utf8(v)
                    .map(|s| Scalar::Str(s.to_owned()))
                    .map_err(|_| E::custom(NOT_A_SCALAR))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Err(E::custom(NOT_A_SCALAR))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
                Err(E::custom(NOT_A_SCALAR))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Err(E::custom(NOT_A_SCALAR))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Err(E::custom(NOT_A_SCALAR))
            }
            fn visit_some<D: de::Deserializer<'de>>(self, _: D) -> Result<Scalar, D::Error> {
                Err(de::Error::custom(NOT_A_SCALAR))
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                _: D,
            ) -> Result<Scalar, D::Error> {
                Err(de::Error::custom(NOT_A_SCALAR))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Scalar, A::Error> {
                Err(de::Error::custom(NOT_A_SCALAR))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Scalar, A::Error> {
                Err(de::Error::custom(NOT_A_SCALAR))
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Scalar, A::Error> {
                Err(de::Error::custom(NOT_A_SCALAR))
            }
        }
        d.deserialize_any(V)
    }
}

/// A setting as written: `600`, `"${t}"` or `{ at_least = 262144, reason = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SettingSpec {
    pub value: Scalar,
    pub intent: Intent,
    pub reason: Option<String>,
}

impl<'de> Deserialize<'de> for SettingSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SettingSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer, a string, or a table with one of `exact`, `at_least`, `at_most` and an optional `reason`")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SettingSpec, E> {
                Ok(SettingSpec {
                    value: Scalar::Int(v),
                    intent: Intent::Exact,
                    reason: None,
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SettingSpec, E> {
                let v = i64::try_from(v).map_err(|_| too_large(v))?;
                self.visit_i64(v)
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<SettingSpec, E> {
                let v = i64::try_from(v).map_err(|_| too_large(v))?;
                self.visit_i64(v)
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<SettingSpec, E> {
                let v = i64::try_from(v).map_err(|_| too_large(v))?;
                self.visit_i64(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingSpec, E> {
                Ok(SettingSpec {
                    value: Scalar::Str(v.to_owned()),
                    intent: Intent::Exact,
                    reason: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SettingSpec, A::Error> {
                let mut found: Option<(Intent, Scalar)> = None;
                let mut reason = None;
                while let Some(key) = map.next_key::<String>()? {
                    let intent = match key.as_str() {
                        "exact" => Intent::Exact,
                        "at_least" => Intent::AtLeast,
                        "at_most" => Intent::AtMost,
                        "reason" => {
                            if reason.is_some() {
                                return Err(de::Error::duplicate_field("reason"));
                            }
                            reason = Some(map.next_value::<String>()?);
                            continue;
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["exact", "at_least", "at_most", "reason"],
                            ))
                        }
                    };
                    if found.is_some() {
                        return Err(de::Error::custom(
                            "give only one of `exact`, `at_least`, `at_most`",
                        ));
                    }
                    found = Some((intent, map.next_value::<Scalar>()?));
                }
                let (intent, value) = found.ok_or_else(|| {
                    de::Error::custom("missing the value: `exact`, `at_least` or `at_most`")
                })?;
                Ok(SettingSpec {
                    value,
                    intent,
                    reason,
                })
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) type Setting = Option<Spanned<SettingSpec>>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VariableSpec {
    pub description: Option<String>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConntrackSpec {
    pub max: Setting,
    pub buckets: Setting,
    pub tcp_timeout_established: Setting,
    pub tcp_timeout_time_wait: Setting,
    pub tcp_timeout_close_wait: Setting,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BacklogSpec {
    pub somaxconn: Setting,
    pub tcp_max_syn_backlog: Setting,
    pub netdev_max_backlog: Setting,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientSpec {
    pub tcp_tw_reuse: Setting,
    pub tcp_syn_retries: Setting,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerSpec {
    pub port: Spanned<Scalar>,
    pub backlog: Option<Spanned<Scalar>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotrackSpec {
    pub from: Option<Spanned<Scalar>>,
    pub to: Option<Spanned<Scalar>>,
    pub port: Option<Spanned<Scalar>>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OffloadSpec {
    pub iface: Spanned<Scalar>,
    pub tso: Option<bool>,
    pub gso: Option<bool>,
    pub gro: Option<bool>,
    pub lro: Option<bool>,
    pub reason: Option<String>,
}

/// A whole profile file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    pub extends: Option<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableSpec>,
    #[serde(default)]
    pub conntrack: ConntrackSpec,
    #[serde(default)]
    pub backlog: BacklogSpec,
    #[serde(default)]
    pub client: ClientSpec,
    #[serde(default)]
    pub sysctl: BTreeMap<Spanned<String>, Spanned<SettingSpec>>,
    #[serde(default)]
    pub listener: Vec<ListenerSpec>,
    #[serde(default)]
    pub notrack: Vec<NotrackSpec>,
    #[serde(default)]
    pub offload: Vec<OffloadSpec>,
}
