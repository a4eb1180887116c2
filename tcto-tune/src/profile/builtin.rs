//! Built-in profiles, embedded from `profiles/*.toml` at compile time so the
//! binary works on a host that has only the binary.

/// `(name, TOML text)` of every built-in profile.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "backlog-overflow",
        include_str!("../../../profiles/backlog-overflow.toml"),
    ),
    ("client", include_str!("../../../profiles/client.toml")),
    (
        "conntrack-exhaustion",
        include_str!("../../../profiles/conntrack-exhaustion.toml"),
    ),
    (
        "high-conn",
        include_str!("../../../profiles/high-conn.toml"),
    ),
    (
        "offload-off",
        include_str!("../../../profiles/offload-off.toml"),
    ),
    (
        "rp-filter-loose",
        include_str!("../../../profiles/rp-filter-loose.toml"),
    ),
    (
        "syn-flood",
        include_str!("../../../profiles/syn-flood.toml"),
    ),
    (
        "trusted-notrack",
        include_str!("../../../profiles/trusted-notrack.toml"),
    ),
];

/// The TOML text of the built-in profile `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The `description` of the built-in profile `name`, read without filling
/// its variables (so profiles that need `--set` can still be listed).
pub fn builtin_description(name: &str) -> Option<String> {
    let spec: super::spec::ProfileSpec = toml::from_str(builtin(name)?).ok()?;
    spec.description
}

/// Names of every built-in profile, sorted.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}
