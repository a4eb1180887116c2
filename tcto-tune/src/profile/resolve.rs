//! Loading a profile: find it, parse it, follow `extends`, fill variables,
//! and turn every loose value into a typed, validated one.
//!
//! Every error names the file, line and column of the value at fault, so a
//! user with a 200-line profile is never left guessing.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::spec::{
    ListenerSpec, NotrackSpec, OffloadSpec, ProfileSpec, Scalar, Setting, SettingSpec,
};
use super::{builtin, Profile, ProfileError};
use crate::fix::{
    key_info, BacklogFix, ClientFix, ConntrackFix, Desired, Intent, Listener, NotrackFlow,
    OffloadFix, RawSysctl, SysctlValue,
};
use crate::names::{parse_port, Cidr, IfName, SysctlName};

/// Largest profile file accepted.
const MAX_PROFILE_BYTES: u64 = 1 << 20;
/// Deepest `extends` chain accepted.
const MAX_EXTENDS_DEPTH: usize = 8;
/// Longest value accepted for a variable or a reason.
const MAX_TEXT_LEN: usize = 512;

/// Where a profile's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileOrigin {
    /// A built-in, by name.
    Builtin(String),
    /// A file.
    File(PathBuf),
}

impl ProfileOrigin {
    fn label(&self) -> String {
        match self {
            ProfileOrigin::Builtin(n) => format!("builtin:{n}"),
            ProfileOrigin::File(p) => p.display().to_string(),
        }
    }
    fn dir(&self) -> Option<&Path> {
        match self {
            ProfileOrigin::Builtin(_) => None,
            ProfileOrigin::File(p) => p.parent(),
        }
    }
    fn default_name(&self) -> String {
        match self {
            ProfileOrigin::Builtin(n) => n.clone(),
            ProfileOrigin::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "profile".into()),
        }
    }
}

struct Layer {
    origin: ProfileOrigin,
    text: String,
    spec: ProfileSpec,
}

impl Layer {
    /// The profile's `name`, else the built-in's name or the file's stem.
    fn name(&self) -> String {
        self.spec
            .name
            .clone()
            .unwrap_or_else(|| self.origin.default_name())
    }

    fn at(
        &self,
        span: Range<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> ProfileError {
        let (line, column) = line_col(&self.text, span.start);
        ProfileError::At {
            file: self.origin.label(),
            line,
            column,
            key: key.map(str::to_owned),
            variable: None,
            message: message.into(),
        }
    }

    /// A value that failed validation after variables were filled: the
    /// error names the variable it came from, so the variable is blamed.
    fn bad_value(
        &self,
        raw: &Spanned<Scalar>,
        key: &str,
        e: impl std::fmt::Display,
    ) -> ProfileError {
        let mut err = self.at(
            raw.span(),
            Some(key),
            format!("{e}{}", var_note(raw.get_ref())),
        );
        if let ProfileError::At { variable, .. } = &mut err {
            *variable = var_names(raw.get_ref()).into_iter().next();
        }
        err
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Load the profile `reference` (a built-in name, or a path when it contains
/// `/` or ends in `.toml`) with the variables the user set.
pub fn load(reference: &str, vars: &BTreeMap<String, String>) -> Result<Profile, ProfileError> {
    let (origin, text) = locate(reference, None)?;
    load_text(origin, &text, vars)
}

/// A bad value filled from a variable's default is the file's fault, not
/// the caller's: only a variable the caller gave is blamed (a usage error,
/// whose hint says how to give it another value). The message still names
/// the variable the value came from.
fn blame_only_given(mut e: ProfileError, given: &BTreeMap<String, String>) -> ProfileError {
    if let ProfileError::At { variable, .. } = &mut e {
        if variable.as_ref().is_some_and(|v| !given.contains_key(v)) {
            *variable = None;
        }
    }
    e
}

/// Load a profile from text already in memory.
pub fn load_text(
    origin: ProfileOrigin,
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Profile, ProfileError> {
    let first = parse(origin, text.to_owned())?;
    let chain = follow_extends(first)?;
    // The name lands in the header line of /etc/sysctl.d/99-tcto-tune.conf,
    // in persisted.toml and in printed commands: a newline in it (from the
    // file or, by default, the file's own name) would inject a line into a
    // file systemd-sysctl applies at boot.
    for layer in &chain {
        let at = |key: &str| {
            let pos = layer.text.find(key).unwrap_or(0);
            pos..pos
        };
        check_text("`name`", &layer.name()).map_err(|m| {
            let m = if layer.spec.name.is_some() {
                m
            } else {
                format!("{m} (the default name is the file's name: set `name = \"...\"`)")
            };
            layer.at(at("name"), Some("name"), m)
        })?;
        if let Some(d) = &layer.spec.description {
            check_text("`description`", d)
                .map_err(|m| layer.at(at("description"), Some("description"), m))?;
        }
    }
    let values = fill_variables(&chain, vars)?;
    let mut profile = Profile::default();
    // Base first, so each child overrides what it inherits.
    for layer in chain.iter().rev() {
        merge(
            &mut profile,
            convert(layer, &values).map_err(|e| blame_only_given(e, vars))?,
        );
    }
    profile.name = chain[0].name();
    profile.description = chain
        .iter()
        .find_map(|l| l.spec.description.clone())
        .unwrap_or_default();
    Ok(profile)
}

fn locate(reference: &str, base: Option<&Path>) -> Result<(ProfileOrigin, String), ProfileError> {
    if reference.contains('/') || reference.ends_with(".toml") {
        let path = match base {
            Some(dir) if Path::new(reference).is_relative() => dir.join(reference),
            _ => PathBuf::from(reference),
        };
        let read_err = |source| ProfileError::Read {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(read_err)?;
        if !meta.is_file() {
            // A FIFO would hang, /dev/zero would never end.
            return Err(read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        if meta.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge {
                path,
                size: meta.len(),
                limit: MAX_PROFILE_BYTES,
            });
        }
        let mut text = String::new();
        use std::io::Read as _;
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_PROFILE_BYTES + 1).read_to_string(&mut text))
            .map_err(read_err)?;
        if text.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge {
                path,
                size: text.len() as u64,
                limit: MAX_PROFILE_BYTES,
            });
        }
        return Ok((ProfileOrigin::File(path), text));
    }
    match builtin(reference) {
        Some(text) => Ok((
            ProfileOrigin::Builtin(reference.to_owned()),
            text.to_owned(),
        )),
        None => Err(ProfileError::Unknown {
            name: reference.to_owned(),
        }),
    }
}

fn parse(origin: ProfileOrigin, text: String) -> Result<Layer, ProfileError> {
    match toml::from_str::<ProfileSpec>(&text) {
        Ok(spec) => Ok(Layer { origin, text, spec }),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let key = text
                .get(span.clone())
                .map(|s| s.trim_matches('"'))
                .filter(|s| !s.is_empty() && s.len() <= 64 && !s.contains('\n'))
                .map(str::to_owned);
            let message = e.message().trim().replace('\n', " ");
            let layer = Layer {
                origin,
                text,
                spec: ProfileSpec::default(),
            };
            Err(layer.at(span, key.as_deref(), message))
        }
    }
}

fn identity(origin: &ProfileOrigin) -> String {
    match origin {
        ProfileOrigin::Builtin(n) => format!("builtin:{n}"),
        ProfileOrigin::File(p) => std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
    }
}

fn follow_extends(first: Layer) -> Result<Vec<Layer>, ProfileError> {
    let mut seen = vec![identity(&first.origin)];
    let mut names = vec![first.origin.default_name()];
    let mut chain = vec![first];
    while let Some(parent) = chain.last().unwrap().spec.extends.clone() {
        let child = chain.last().unwrap();
        let (origin, text) = locate(parent.get_ref(), child.origin.dir()).map_err(|e| match e {
            ProfileError::Unknown { name } => child.at(
                parent.span(),
                Some("extends"),
                format!("`extends` names unknown profile `{name}`"),
            ),
            other => other,
        })?;
        let id = identity(&origin);
        names.push(origin.default_name());
        if seen.contains(&id) {
            return Err(ProfileError::Cycle {
                name: origin.default_name(),
                chain: names.join(" -> "),
            });
        }
        if chain.len() >= MAX_EXTENDS_DEPTH {
            return Err(ProfileError::TooDeep {
                max: MAX_EXTENDS_DEPTH,
                chain: names.join(" -> "),
            });
        }
        seen.push(id);
        chain.push(parse(origin, text)?);
    }
    Ok(chain)
}

fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_LEN {
        return Err(format!("{what} is longer than {MAX_TEXT_LEN} bytes"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(format!("{what} contains a newline or control character"));
    }
    Ok(())
}

fn fill_variables(
    chain: &[Layer],
    set: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ProfileError> {
    let profile = chain[0].name();
    let mut declared = BTreeMap::new();
    for layer in chain.iter().rev() {
        for (name, var) in &layer.spec.variables {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                let at = layer.text.find(name.as_str()).unwrap_or(0);
                return Err(layer.at(
                    at..at,
                    Some(name),
                    format!("variable name `{name}` must be lowercase letters, digits and `_`"),
                ));
            }
            declared.insert(name.clone(), var.clone());
        }
    }
    for (name, value) in set {
        if !declared.contains_key(name) {
            return Err(ProfileError::UnknownVariable {
                name: name.clone(),
                profile: profile.clone(),
                declared: declared.keys().cloned().collect(),
            });
        }
        check_text("the value", value).map_err(|why| ProfileError::BadVariable {
            name: name.clone(),
            why,
        })?;
    }
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, var) in declared {
        match set.get(&name).cloned().or(var.default) {
            Some(v) => {
                values.insert(name, v);
            }
            None => missing.push((name, var.description)),
        }
    }
    let mut missing = missing.into_iter();
    match missing.next() {
        None => Ok(values),
        Some((name, description)) => Err(ProfileError::MissingVariable {
            name,
            profile: profile.clone(),
            description: description.unwrap_or_else(|| "no description".into()),
            others: missing.map(|(n, _)| n).collect(),
        }),
    }
}

/// " (the value of variable `x`)" for a templated value, so an error in a
/// variable's value names the variable, not only the profile line that
/// uses it (the hint then says how to give it another value).
fn var_note(raw: &Scalar) -> String {
    let names = var_names(raw);
    if names.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!(" (the value of variable {})", quoted.join(", "))
}

/// The `${name}`s a templated value refers to.
fn var_names(raw: &Scalar) -> Vec<String> {
    let Scalar::Str(t) = raw else {
        return Vec::new();
    };
    t.split("${")
        .skip(1)
        .filter_map(|r| r.split_once('}').map(|(n, _)| n.to_owned()))
        .collect()
}

/// Fill `${name}` references in `text`.
fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated `${`")?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| {
            format!("`${{{name}}}` names a variable the profile does not declare under [variables]")
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Converter<'a> {
    layer: &'a Layer,
    values: &'a BTreeMap<String, String>,
}

impl Converter<'_> {
    fn text(&self, s: &Spanned<Scalar>, key: &str) -> Result<String, ProfileError> {
        match s.get_ref() {
            Scalar::Int(n) => Ok(n.to_string()),
            Scalar::Str(t) => {
                substitute(t, self.values).map_err(|m| self.layer.at(s.span(), Some(key), m))
            }
        }
    }

    fn reason(
        &self,
        r: &Option<String>,
        span: Range<usize>,
        key: &str,
    ) -> Result<Option<String>, ProfileError> {
        if let Some(r) = r {
            check_text("`reason`", r).map_err(|m| self.layer.at(span, Some(key), m))?;
        }
        Ok(r.clone())
    }

    fn int(&self, s: &Spanned<SettingSpec>, key: &str) -> Result<Desired<i64>, ProfileError> {
        let spec = s.get_ref();
        let value = match &spec.value {
            Scalar::Int(n) => *n,
            Scalar::Str(t) => {
                let filled = substitute(t, self.values)
                    .map_err(|m| self.layer.at(s.span(), Some(key), m))?;
                filled.trim().parse().map_err(|_| {
                    self.layer.at(
                        s.span(),
                        Some(key),
                        format!(
                            "`{key}` must be an integer, got `{}`",
                            filled.escape_debug()
                        ),
                    )
                })?
            }
        };
        Ok(Desired {
            value,
            intent: spec.intent,
            reason: self.reason(&spec.reason, s.span(), key)?,
        })
    }

    fn setting(&self, s: &Setting, key: &str) -> Result<Option<Desired<i64>>, ProfileError> {
        s.as_ref().map(|s| self.int(s, key)).transpose()
    }

    fn raw(
        &self,
        key: &Spanned<String>,
        s: &Spanned<SettingSpec>,
    ) -> Result<RawSysctl, ProfileError> {
        // A key may name an interface through a variable
        // (`net.ipv4.conf.${iface}.rp_filter`); the filled key is checked
        // like a literal one.
        let filled_key = substitute(key.get_ref(), self.values)
            .map_err(|m| self.layer.at(key.span(), Some(key.get_ref()), m))?;
        let name = SysctlName::new(&filled_key).map_err(|e| {
            let templated = Scalar::Str(key.get_ref().clone());
            let mut err = self.layer.at(
                key.span(),
                Some(key.get_ref()),
                format!("{e}{}", var_note(&templated)),
            );
            if let ProfileError::At { variable, .. } = &mut err {
                *variable = var_names(&templated).into_iter().next();
            }
            err
        })?;
        if let Some(info) = key_info(name.as_str()) {
            let section = typed_home(info.name);
            return Err(self.layer.at(
                key.span(),
                Some(key.get_ref()),
                format!("`{name}` is a typed fix: set it as {section} instead of under [sysctl]"),
            ));
        }
        let spec = s.get_ref();
        let value = match &spec.value {
            Scalar::Int(n) => SysctlValue::Int(*n),
            Scalar::Str(t) => {
                let filled = substitute(t, self.values)
                    .map_err(|m| self.layer.at(s.span(), Some(key.get_ref()), m))?;
                check_text("the value", &filled)
                    .map_err(|m| self.layer.at(s.span(), Some(key.get_ref()), m))?;
                if filled.trim().is_empty() {
                    return Err(self.layer.at(s.span(), Some(key.get_ref()), "empty value"));
                }
                SysctlValue::parse_kernel(&filled)
            }
        };
        if spec.intent != Intent::Exact && value.as_int().is_none() {
            return Err(self.layer.at(
                s.span(),
                Some(key.get_ref()),
                "`at_least`/`at_most` need an integer value",
            ));
        }
        Ok(RawSysctl {
            key: name,
            desired: Desired {
                value,
                intent: spec.intent,
                reason: self.reason(&spec.reason, s.span(), key.get_ref())?,
            },
        })
    }
}

fn typed_home(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or_default() {
        "somaxconn" => "[backlog] somaxconn",
        "tcp_max_syn_backlog" => "[backlog] tcp_max_syn_backlog",
        "netdev_max_backlog" => "[backlog] netdev_max_backlog",
        "nf_conntrack_max" => "[conntrack] max",
        "nf_conntrack_buckets" => "[conntrack] buckets",
        "nf_conntrack_tcp_timeout_established" => "[conntrack] tcp_timeout_established",
        "nf_conntrack_tcp_timeout_time_wait" => "[conntrack] tcp_timeout_time_wait",
        "nf_conntrack_tcp_timeout_close_wait" => "[conntrack] tcp_timeout_close_wait",
        "tcp_tw_reuse" => "[client] tcp_tw_reuse",
        _ => "[client] tcp_syn_retries",
    }
}

fn convert(layer: &Layer, values: &BTreeMap<String, String>) -> Result<Profile, ProfileError> {
    let c = Converter { layer, values };
    let s = &layer.spec;
    let mut p = c.typed_sections()?;
    for (key, value) in &s.sysctl {
        p.sysctl.push(c.raw(key, value)?);
    }
    for code in &s.allow {
        p.allow.insert(c.allow_code(code)?);
    }
    for l in &s.listener {
        let (port, backlog) = c.listener(l)?;
        p.add_listener(port, backlog);
    }
    for n in &s.notrack {
        p.notrack.push(c.notrack(n)?);
    }
    for o in &s.offload {
        p.offloads.push(c.offload(o)?);
    }
    Ok(p)
}

impl Converter<'_> {
    /// The typed sections (`[conntrack]`, `[backlog]`, `[client]`), with
    /// everything else left empty.
    fn typed_sections(&self) -> Result<Profile, ProfileError> {
        let c = self;
        let s = &self.layer.spec;
        Ok(Profile {
            conntrack: ConntrackFix {
                max: c.setting(&s.conntrack.max, "max")?,
                buckets: c.setting(&s.conntrack.buckets, "buckets")?,
                tcp_timeout_established: c.setting(
                    &s.conntrack.tcp_timeout_established,
                    "tcp_timeout_established",
                )?,
                tcp_timeout_time_wait: c
                    .setting(&s.conntrack.tcp_timeout_time_wait, "tcp_timeout_time_wait")?,
                tcp_timeout_close_wait: c.setting(
                    &s.conntrack.tcp_timeout_close_wait,
                    "tcp_timeout_close_wait",
                )?,
            },
            backlog: BacklogFix {
                somaxconn: c.setting(&s.backlog.somaxconn, "somaxconn")?,
                tcp_max_syn_backlog: c
                    .setting(&s.backlog.tcp_max_syn_backlog, "tcp_max_syn_backlog")?,
                netdev_max_backlog: c
                    .setting(&s.backlog.netdev_max_backlog, "netdev_max_backlog")?,
            },
            client: ClientFix {
                tcp_tw_reuse: c.setting(&s.client.tcp_tw_reuse, "tcp_tw_reuse")?,
                tcp_syn_retries: c.setting(&s.client.tcp_syn_retries, "tcp_syn_retries")?,
            },
            ..Default::default()
        })
    }

    /// One code of `allow = [...]`: known, and one that may be allowed.
    fn allow_code(&self, code: &Spanned<String>) -> Result<String, ProfileError> {
        let layer = self.layer;
        if code
            .get_ref()
            .parse::<crate::finding::FindingCode>()
            .is_err()
        {
            return Err(layer.at(
                code.span(),
                Some("allow"),
                format!(
                    "unknown code `{}` in `allow`",
                    code.get_ref().escape_debug()
                ),
            ));
        }
        if !crate::finding::allowable(code.get_ref()) {
            return Err(layer.at(
                code.span(),
                Some("allow"),
                format!(
                    "`{}` in `allow` can never be allowed: the key makes the kernel run a program or load code as root",
                    code.get_ref()
                ),
            ));
        }
        Ok(code.get_ref().clone())
    }

    /// One `[[listener]]`: its port and its backlog, if set.
    fn listener(&self, l: &ListenerSpec) -> Result<(u16, Option<u32>), ProfileError> {
        let (c, layer) = (self, self.layer);
        let port = c.text(&l.port, "port")?;
        let port = parse_port(&port).map_err(|e| layer.bad_value(&l.port, "port", e))?;
        let backlog = match &l.backlog {
            None => None,
            Some(b) => {
                let t = c.text(b, "backlog")?;
                Some(
                    t.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=i32::MAX as u32).contains(n))
                        .ok_or_else(|| {
                            layer.at(
                                b.span(),
                                Some("backlog"),
                                format!(
                                    "`backlog` must be an integer from 1 to {}, got `{}`",
                                    i32::MAX,
                                    t.escape_debug()
                                ),
                            )
                        })?,
                )
            }
        };
        Ok((port, backlog))
    }

    /// One `[[notrack]]` flow; `from` and `to` of one family.
    fn notrack(&self, n: &NotrackSpec) -> Result<NotrackFlow, ProfileError> {
        let (c, layer) = (self, self.layer);
        let subnet =
            |f: &Option<Spanned<Scalar>>, key: &str| -> Result<Option<Cidr>, ProfileError> {
                f.as_ref()
                    .map(|f| {
                        c.text(f, key)?
                            .parse::<Cidr>()
                            .map_err(|e| layer.bad_value(f, key, e))
                    })
                    .transpose()
            };
        let from = subnet(&n.from, "from")?;
        let to = subnet(&n.to, "to")?;
        let port = n
            .port
            .as_ref()
            .map(|f| parse_port(&c.text(f, "port")?).map_err(|e| layer.bad_value(f, "port", e)))
            .transpose()?;
        if let (Some(a), Some(b)) = (from, to) {
            if a.is_ipv4() != b.is_ipv4() {
                let span = n.to.as_ref().map(|t| t.span()).unwrap_or(0..0);
                return Err(layer.at(
                    span,
                    Some("to"),
                    format!("`from` {a} and `to` {b} mix IPv4 and IPv6"),
                ));
            }
        }
        let span = n.from.as_ref().map(|t| t.span()).unwrap_or(0..0);
        Ok(NotrackFlow {
            from,
            to,
            port,
            reason: c.reason(&n.reason, span, "reason")?,
        })
    }

    /// One `[[offload]]` entry; it sets at least one toggle.
    fn offload(&self, o: &OffloadSpec) -> Result<OffloadFix, ProfileError> {
        let (c, layer) = (self, self.layer);
        let name = c.text(&o.iface, "iface")?;
        let iface = IfName::new(&name).map_err(|e| layer.bad_value(&o.iface, "iface", e))?;
        let fix = OffloadFix {
            iface,
            tso: o.tso,
            gso: o.gso,
            gro: o.gro,
            lro: o.lro,
            reason: c.reason(&o.reason, o.iface.span(), "reason")?,
        };
        if fix.toggles().is_empty() {
            return Err(layer.at(
                o.iface.span(),
                Some("iface"),
                "an [[offload]] entry must set at least one of tso, gso, gro, lro",
            ));
        }
        Ok(fix)
    }
}

fn merge(into: &mut Profile, child: Profile) {
    macro_rules! over {
        ($($section:ident . $field:ident),*) => {
            $( if child.$section.$field.is_some() { into.$section.$field = child.$section.$field; } )*
        };
    }
    over!(
        conntrack.max,
        conntrack.buckets,
        conntrack.tcp_timeout_established,
        conntrack.tcp_timeout_time_wait,
        conntrack.tcp_timeout_close_wait,
        backlog.somaxconn,
        backlog.tcp_max_syn_backlog,
        backlog.netdev_max_backlog,
        client.tcp_tw_reuse,
        client.tcp_syn_retries
    );
    for raw in child.sysctl {
        into.sysctl.retain(|r| r.key != raw.key);
        into.sysctl.push(raw);
    }
    into.sysctl.sort_by(|a, b| a.key.cmp(&b.key));
    for Listener { port, backlog } in child.listeners {
        into.add_listener(port, backlog);
    }
    // A set, not `Vec::contains`: that was quadratic for profiles with
    // thousands of flows (13% of `plan` at 1,000 flows).
    // Sized up front: growing it rehashed every flow ~10 times over.
    let mut seen: std::collections::HashSet<NotrackFlow> =
        std::collections::HashSet::with_capacity(into.notrack.len() + child.notrack.len());
    seen.extend(into.notrack.iter().cloned());
    for flow in child.notrack {
        if seen.insert(flow.clone()) {
            into.notrack.push(flow);
        }
    }
    into.allow.extend(child.allow);
    for fix in child.offloads {
        into.offloads.retain(|o| o.iface != fix.iface);
        into.offloads.push(fix);
    }
}
