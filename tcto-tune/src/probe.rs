//! `probe`: N TCP connects to one address, classified and timed.
//!
//! The client's view of a connect-timeout incident: how many handshakes
//! complete, how many are refused (nothing listens: RST), how many time out
//! (SYNs dropped: full accept queue, full conntrack table, a firewall) or
//! are unreachable (ICMP). The handshake percentiles give the round trip a
//! client connect timeout must cover. The probe only ever connects to the
//! one address it was given, with bounded concurrency and a timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::format_duration;
pub use crate::system::Outcome;
use crate::system::{Attempt, Connector};

/// Version of the JSON probe report.
pub const PROBE_SCHEMA: u32 = 1;
/// Most connects one probe makes.
pub const MAX_COUNT: u32 = 100_000;
/// Most connects in flight.
pub const MAX_CONCURRENCY: u32 = 1_000;
/// Longest connect timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// The kernel's first SYN retransmission timeout (`TCP_TIMEOUT_INIT`,
/// RFC 6298), ms: a connect whose first SYN (or SYN-ACK) is lost completes
/// at the earliest this long after it started.
pub const SYN_RTO_MS: u64 = 1000;
/// Room, ms, beyond the retransmit and the handshake that follows it, for
/// scheduling and queueing delay. A client timeout cut to exactly
/// 1 s + RTT turns every ordinary jitter into a failed connect.
pub const SYN_RTO_MARGIN_MS: u64 = 500;

/// A setting of [`ProbeOptions`] that has a range; a front end names it
/// as its own option (the CLI's `--count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeSetting {
    /// How many connects.
    Count,
    /// How many at once.
    Concurrency,
    /// The connect timeout.
    Timeout,
}

impl ProbeSetting {
    /// Its name in lower case: `count`, `concurrency`, `timeout`.
    pub fn name(self) -> &'static str {
        match self {
            ProbeSetting::Count => "count",
            ProbeSetting::Concurrency => "concurrency",
            ProbeSetting::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for ProbeSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why probe options were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Not `HOST:PORT` or `[V6]:PORT`.
    #[error("invalid target `{text}`: {why}")]
    Target {
        /// The text (shortened).
        text: String,
        /// What is wrong.
        why: String,
    },
    /// A count, concurrency or timeout out of range.
    #[error("the {what} must be {range}, got {got}")]
    Range {
        /// Which option.
        what: ProbeSetting,
        /// The allowed range.
        range: String,
        /// The value given.
        got: String,
    },
}

/// What to probe and how hard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// The one address connected to.
    pub target: SocketAddr,
    /// Number of connects, 1..=[`MAX_COUNT`].
    pub count: u32,
    /// Connects in flight at once, 1..=[`MAX_CONCURRENCY`] (capped at `count`).
    pub concurrency: u32,
    /// Connect timeout, 1 ms..=[`MAX_TIMEOUT`].
    pub timeout: Duration,
    /// How the advice names the next step (a diagnosis on the server):
    /// the caller's words, [`crate::words::Neutral`] by default.
    pub words: crate::words::WordsRef,
}

impl ProbeOptions {
    /// Validated options.
    pub fn new(
        target: SocketAddr,
        count: u32,
        concurrency: u32,
        timeout: Duration,
    ) -> Result<Self, ProbeError> {
        let range = |what, range: String, got: String| ProbeError::Range { what, range, got };
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(range(
                ProbeSetting::Count,
                format!("from 1 to {MAX_COUNT}"),
                count.to_string(),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(range(
                ProbeSetting::Concurrency,
                format!("from 1 to {MAX_CONCURRENCY}"),
                concurrency.to_string(),
            ));
        }
        if timeout < Duration::from_millis(1) || timeout > MAX_TIMEOUT {
            return Err(range(
                ProbeSetting::Timeout,
                format!("from 1ms to {}", format_duration(MAX_TIMEOUT)),
                format_duration(timeout),
            ));
        }
        if target.port() == 0 || target.ip().is_unspecified() {
            return Err(ProbeError::Target {
                text: target.to_string(),
                why: "port 0 and the unspecified address cannot be connected to".into(),
            });
        }
        Ok(ProbeOptions {
            target,
            count,
            concurrency: concurrency.min(count),
            timeout,
            words: crate::words::WordsRef::default(),
        })
    }
}

/// Parse `HOST:PORT` (`10.0.2.5:8080`, `[fd00::5]:8080`, `db.internal:5432`).
/// A host name is resolved once and its first address is the only one used.
pub fn parse_target(text: &str) -> Result<SocketAddr, ProbeError> {
    let err = |why: &str| ProbeError::Target {
        text: text.chars().take(80).collect(),
        why: why.to_owned(),
    };
    if let Ok(a) = text.parse::<SocketAddr>() {
        if a.port() == 0 {
            return Err(err("invalid port `0`: expected a number from 1 to 65535"));
        }
        return Ok(a);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| err("expected HOST:PORT, e.g. 10.0.2.5:8080 or [fd00::5]:8080"))?;
    crate::names::parse_port(port).map_err(|e| err(&e.to_string()))?;
    if host.is_empty() || host.contains(':') {
        return Err(err(
            "expected HOST:PORT; write IPv6 addresses in brackets: [fd00::5]:8080",
        ));
    }
    let valid = host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        });
    if !valid {
        return Err(err("not an IP address or a valid host name"));
    }
    crate::system::resolve(text)
        .map_err(|e| err(&format!("cannot resolve: {e}")))?
        .ok_or_else(|| err("the name has no address"))
}

/// Handshake-time percentiles, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Fastest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Handshakes completed.
    pub established: u32,
    /// Refused (RST).
    pub refused: u32,
    /// Timed out.
    pub timed_out: u32,
    /// Unreachable (ICMP, no route).
    pub unreachable: u32,
    /// Other errors.
    pub error: u32,
}

/// The result of a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// JSON schema version ([`PROBE_SCHEMA`]).
    pub schema: u32,
    /// The address connected to.
    pub target: SocketAddr,
    /// Connects made.
    pub count: u32,
    /// Connects in flight at once.
    pub concurrency: u32,
    /// Connect timeout, milliseconds.
    pub timeout_ms: u64,
    /// Counts per outcome.
    pub outcomes: OutcomeCounts,
    /// Distinct errnos behind `error`, if any.
    pub error_codes: Vec<i32>,
    /// Handshake times of the established connects.
    pub handshake_ms: Option<Percentiles>,
    /// Client connect timeout to use, ms: the larger of 3 x the p99
    /// handshake and one lost SYN survived (the 1 s retransmit, the p99
    /// handshake after it, and a margin); see [`recommended_timeout_ms`].
    pub recommended_connect_timeout_ms: Option<u64>,
    /// What the numbers mean, in one or two sentences.
    pub advice: Vec<String>,
}

impl ProbeReport {
    /// True when every connect completed its handshake.
    pub fn all_established(&self) -> bool {
        self.outcomes.established == self.count
    }
}

/// Make the connects with up to `concurrency` threads and summarize them.
pub fn probe(connector: &dyn Connector, opts: &ProbeOptions) -> ProbeReport {
    let next = AtomicU32::new(0);
    let results = Mutex::new(Vec::with_capacity(opts.count as usize));
    std::thread::scope(|s| {
        for _ in 0..opts.concurrency {
            s.spawn(|| {
                let mut mine = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < opts.count {
                    mine.push(connector.connect(opts.target, opts.timeout));
                }
                results.lock().expect("no panics hold it").extend(mine);
            });
        }
    });
    summarize(opts, &results.into_inner().expect("threads joined"))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The client connect timeout to recommend for a p99 handshake of `p99_ms`:
/// `max(3 x p99, 1 s + p99 + 500 ms)`, rounded up to whole ms.
///
/// Three times the p99 covers a slow tail, but on a fast network it is a
/// few ms, and a timeout below the kernel's first SYN retransmit (1 s)
/// turns every single lost SYN into a failed connect: the retransmitted SYN
/// is sent only after 1 s, and its handshake then takes a round trip more.
/// So the recommendation never goes below surviving one lost SYN, plus
/// [`SYN_RTO_MARGIN_MS`].
pub fn recommended_timeout_ms(p99_ms: f64) -> u64 {
    let p99 = p99_ms.max(0.0);
    let tail = (p99 * 3.0).ceil() as u64;
    let one_lost_syn = SYN_RTO_MS + SYN_RTO_MARGIN_MS + p99.ceil() as u64;
    tail.max(one_lost_syn)
}

/// The advice line for a recommendation of `ms`, saying which bound set it.
fn timeout_advice(ms: u64, p99: f64) -> String {
    let tail = (p99.max(0.0) * 3.0).ceil() as u64;
    if tail >= ms {
        format!(
            "set client connect timeouts to at least {ms} ms (3 x the p99 handshake of {p99:.3} ms); \
             that is above the {SYN_RTO_MS} ms after which the kernel retransmits a lost SYN, so one lost SYN does not fail the connect"
        )
    } else {
        format!(
            "set client connect timeouts to at least {ms} ms, so that one lost SYN does not fail the connect: \
             the kernel retransmits it only after {SYN_RTO_MS} ms, the handshake then takes up to the p99 of {p99:.3} ms, \
             plus {SYN_RTO_MARGIN_MS} ms to spare (3 x the p99 alone would be {} ms)",
            tail.max(1)
        )
    }
}

/// Summarize attempts (pure: what `probe` reports).
pub fn summarize(opts: &ProbeOptions, attempts: &[Attempt]) -> ProbeReport {
    let mut c = OutcomeCounts::default();
    let mut codes = Vec::new();
    let mut times = Vec::new();
    for a in attempts {
        match a.outcome {
            Outcome::Established => {
                c.established += 1;
                times.push(a.elapsed.as_secs_f64() * 1000.0);
            }
            Outcome::Refused => c.refused += 1,
            Outcome::TimedOut => c.timed_out += 1,
            Outcome::Unreachable => c.unreachable += 1,
            Outcome::Error(e) => {
                c.error += 1;
                if !codes.contains(&e) {
                    codes.push(e);
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let handshake_ms = (!times.is_empty()).then(|| Percentiles {
        min: round(times[0]),
        p50: round(percentile(&times, 50.0)),
        p90: round(percentile(&times, 90.0)),
        p99: round(percentile(&times, 99.0)),
        max: round(times[times.len() - 1]),
    });
    let recommended = handshake_ms.map(|p| recommended_timeout_ms(p.p99));
    let total = attempts.len() as u32;
    let mut advice = Vec::new();
    if let (Some(ms), Some(p)) = (recommended, handshake_ms) {
        advice.push(timeout_advice(ms, p.p99));
    }
    if c.timed_out > 0 {
        advice.push(format!(
            "{} of {total} connects timed out after {} ms: the server side drops SYNs (full accept queue, full conntrack table, or a firewall); run {} there; a longer client timeout only hides it",
            c.timed_out,
            opts.timeout.as_millis(),
            opts.words.name(&crate::words::Action::Diagnose { interval: None })
        ));
    }
    if c.refused > 0 {
        advice.push(format!(
            "{} of {total} connects were refused: nothing listens on {} (or a firewall rejects)",
            c.refused, opts.target
        ));
    }
    if c.unreachable > 0 {
        advice.push(format!(
            "{} of {total} connects were unreachable: no route, or an ICMP unreachable from the path",
            c.unreachable
        ));
    }
    ProbeReport {
        schema: PROBE_SCHEMA,
        target: opts.target,
        count: total,
        concurrency: opts.concurrency,
        timeout_ms: opts.timeout.as_millis() as u64,
        outcomes: c,
        error_codes: codes,
        handshake_ms,
        recommended_connect_timeout_ms: recommended,
        advice,
    }
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.outcomes;
        writeln!(
            f,
            "probe {}: {} connects, {} at a time, timeout {} ms",
            self.target, self.count, self.concurrency, self.timeout_ms
        )?;
        writeln!(
            f,
            "  established {}  refused {}  timed out {}  unreachable {}  error {}",
            c.established, c.refused, c.timed_out, c.unreachable, c.error
        )?;
        if !self.error_codes.is_empty() {
            let codes: Vec<String> = self
                .error_codes
                .iter()
                .map(|e| std::io::Error::from_raw_os_error(*e).to_string())
                .collect();
            writeln!(f, "  errors: {}", codes.join("; "))?;
        }
        if let Some(p) = &self.handshake_ms {
            writeln!(
                f,
                "  handshake ms: min {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                p.min, p.p50, p.p90, p.p99, p.max
            )?;
        }
        for a in &self.advice {
            writeln!(f, "  - {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted(Vec<Outcome>, AtomicU32);

    impl Connector for Scripted {
        fn connect(&self, addr: SocketAddr, _timeout: Duration) -> Attempt {
            assert_eq!(addr, "10.0.2.5:8080".parse().unwrap(), "only the target");
            let i = self.1.fetch_add(1, Ordering::SeqCst) as usize;
            Attempt {
                outcome: self.0[i % self.0.len()],
                elapsed: Duration::from_millis(1 + (i as u64 % 10)),
            }
        }
    }

    fn opts(count: u32, conc: u32) -> ProbeOptions {
        ProbeOptions::new(
            "10.0.2.5:8080".parse().unwrap(),
            count,
            conc,
            Duration::from_secs(3),
        )
        .unwrap()
    }

    #[test]
    fn counts_every_outcome_across_threads() {
        let c = Scripted(
            vec![
                Outcome::Established,
                Outcome::Refused,
                Outcome::TimedOut,
                Outcome::Unreachable,
                Outcome::Error(libc::EACCES),
            ],
            AtomicU32::new(0),
        );
        let r = probe(&c, &opts(200, 20));
        assert_eq!(r.count, 200);
        assert_eq!(
            r.outcomes,
            OutcomeCounts {
                established: 40,
                refused: 40,
                timed_out: 40,
                unreachable: 40,
                error: 40
            }
        );
        assert_eq!(r.error_codes, vec![libc::EACCES]);
        assert!(!r.all_established());
        assert!(r
            .advice
            .iter()
            .any(|a| a.contains("40 of 200 connects timed out")));
        assert!(r.to_string().contains("Permission denied"));
    }

    #[test]
    fn percentiles_and_recommendation() {
        let attempts: Vec<Attempt> = (1..=100)
            .map(|ms| Attempt {
                outcome: Outcome::Established,
                elapsed: Duration::from_millis(ms),
            })
            .collect();
        let r = summarize(&opts(100, 1), &attempts);
        let p = r.handshake_ms.unwrap();
        assert_eq!(
            (p.min, p.p50, p.p90, p.p99, p.max),
            (1.0, 50.0, 90.0, 99.0, 100.0)
        );
        // 3 x 99 ms = 297 ms would fail every connect whose first SYN is
        // lost: the floor is 1 s + the p99 + 500 ms.
        assert_eq!(r.recommended_connect_timeout_ms, Some(1599));
        assert!(r.all_established());
        assert_eq!(r.advice.len(), 1);
        assert!(
            r.advice[0].contains("at least 1599 ms")
                && r.advice[0].contains("retransmits it only after 1000 ms")
                && r.advice[0].contains("3 x the p99 alone would be 297 ms"),
            "{}",
            r.advice[0]
        );
    }

    #[test]
    fn the_recommendation_never_falls_below_one_lost_syn() {
        // A loopback-fast p99 once gave "at least 1 ms".
        assert_eq!(recommended_timeout_ms(0.141), 1501);
        assert_eq!(recommended_timeout_ms(0.0), 1500);
        for p99 in [0.001, 0.5, 10.0, 333.0, 499.0, 500.0, 749.9, 750.0, 2000.0] {
            let ms = recommended_timeout_ms(p99);
            assert!(
                ms as f64 >= SYN_RTO_MS as f64 + p99 + SYN_RTO_MARGIN_MS as f64,
                "{p99}: {ms}"
            );
            assert!(ms as f64 >= 3.0 * p99, "{p99}: {ms}");
        }
        // A slow tail sets it: 3 x 2000 ms.
        assert_eq!(recommended_timeout_ms(2000.0), 6000);
        let slow = timeout_advice(6000, 2000.0);
        assert!(
            slow.contains("at least 6000 ms (3 x the p99 handshake of 2000.000 ms)")
                && slow.contains("above the 1000 ms"),
            "{slow}"
        );
    }

    #[test]
    fn no_handshakes_no_recommendation() {
        let attempts = [Attempt {
            outcome: Outcome::TimedOut,
            elapsed: Duration::from_secs(3),
        }];
        let r = summarize(&opts(1, 1), &attempts);
        assert_eq!(r.handshake_ms, None);
        assert_eq!(r.recommended_connect_timeout_ms, None);
    }

    #[test]
    fn option_ranges() {
        let t: SocketAddr = "10.0.2.5:8080".parse().unwrap();
        let s = Duration::from_secs(1);
        assert!(ProbeOptions::new(t, 0, 1, s).is_err());
        assert!(ProbeOptions::new(t, MAX_COUNT + 1, 1, s).is_err());
        assert!(ProbeOptions::new(t, 1, 0, s).is_err());
        assert!(ProbeOptions::new(t, 1, MAX_CONCURRENCY + 1, s).is_err());
        assert!(ProbeOptions::new(t, 1, 1, Duration::ZERO).is_err());
        assert!(ProbeOptions::new(t, 1, 1, Duration::from_secs(121)).is_err());
        assert!(ProbeOptions::new("0.0.0.0:80".parse().unwrap(), 1, 1, s).is_err());
        // Concurrency never exceeds the count.
        assert_eq!(ProbeOptions::new(t, 5, 20, s).unwrap().concurrency, 5);
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("10.0.2.5:8080").unwrap(),
            "10.0.2.5:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(parse_target("[::1]:80").unwrap().port(), 80);
        assert_eq!(
            parse_target("localhost:8080").unwrap().port(),
            8080,
            "names resolve once"
        );
        for bad in [
            "10.0.2.5",
            "10.0.2.5:0",
            "10.0.2.5:70000",
            "::1:80",
            ":80",
            "a b:80",
            "-x:80",
            "host:80:90",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} accepted");
        }
    }
}
