//! Reconnect delay arithmetic (`docs/event-stream.md#backoff`,
//! `docs/event-stream.md#planned-close`): pure, no clock, no I/O.
//!
//! Every constant of the reconnect policy lives in [`BackoffPolicy`], so that tests can
//! shorten them and nothing else in the tree hard-codes a delay. [`Backoff`] is the
//! per-tenant state (failure counter, the last `retry:` floor); callers ask it for the
//! next wait and sleep themselves. Randomness is a parameter, so tests can pin it.
//!
//! What this module deliberately does not do: sleep, classify outcomes (the source and
//! the sink decide whether a failure is normal or long), or give up. Retries never stop.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;
use std::time::Duration;

/// The constants of the reconnect policy. [`BackoffPolicy::default`] is the policy of
/// `docs/event-stream.md#backoff`; tests may build a shorter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first normal wait (`1 s`); it doubles per consecutive failure.
    pub base: Duration,
    /// Largest normal ceiling (`60 s`).
    pub cap: Duration,
    /// Ceiling of the long backoff (`300 s`), used for failures a retry will not fix
    /// soon (a rejected key, 403, a captive portal).
    pub long: Duration,
    /// A connection that stayed open this long (`30 s`) resets the failure counter.
    pub stable_after: Duration,
    /// Upper clamp of a server's `retry:` value (`10 min`).
    pub retry_max: Duration,
    /// Lower clamp of `Retry-After` (`1 s`).
    pub retry_after_min: Duration,
    /// Upper clamp of `Retry-After` (`15 min`).
    pub retry_after_max: Duration,
    /// Smallest wait after a planned close (`1 s`).
    pub planned_min: Duration,
    /// Largest jitter added to a planned wait (`250 ms`).
    pub planned_jitter: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self::LOOKOUT
    }
}

impl BackoffPolicy {
    /// The policy of `docs/event-stream.md#outcomes-and-reactions`.
    pub const LOOKOUT: BackoffPolicy = BackoffPolicy {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
        long: Duration::from_secs(300),
        stable_after: Duration::from_secs(30),
        retry_max: Duration::from_secs(600),
        retry_after_min: Duration::from_secs(1),
        retry_after_max: Duration::from_secs(900),
        planned_min: Duration::from_secs(1),
        planned_jitter: Duration::from_millis(250),
    };

    /// The un-jittered ceilings `min(cap, base · 2^(n−1))` for n = 1, 2, …, endless.
    ///
    /// backon's [`ExponentialBuilder`] (no jitter, no `max_times`) is the source: its
    /// own jitter adds up to +100 % instead of drawing from `[d/2, d]`, so jitter is
    /// applied here by [`jitter`], not by backon.
    pub fn ceilings(&self) -> ExponentialBackoff {
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
    }

    /// The ceiling of the n-th consecutive normal failure (`n ≥ 1`; 0 is taken as 1).
    pub fn normal_ceiling(&self, n: u32) -> Duration {
        // After about 64 doublings every ceiling is the cap; do not iterate further.
        let steps = n.clamp(1, 64) as usize;
        self.ceilings()
            .nth(steps - 1)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// Clamps a server `retry:` value (ms) to `retry_max`.
    pub fn clamp_retry(&self, retry_ms: u64) -> Duration {
        Duration::from_millis(retry_ms).min(self.retry_max)
    }

    /// Clamps a `Retry-After` delay to `[retry_after_min, retry_after_max]`.
    pub fn clamp_retry_after(&self, delay: Duration) -> Duration {
        delay.clamp(self.retry_after_min, self.retry_after_max)
    }
}

/// Which backoff a failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Exponential, capped; `retry_after` (already clamped) is a floor when present.
    Normal { retry_after: Option<Duration> },
    /// The long backoff, for failures that need an operator.
    Long,
}

/// One tenant's reconnect state.
#[derive(Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    ceilings: ExponentialBackoff,
    failures: u32,
    retry_floor: Option<Duration>,
}

impl Backoff {
    /// A fresh state: no failures, no `retry:` floor.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            ceilings: policy.ceilings(),
            policy,
            failures: 0,
            retry_floor: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// Consecutive failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A connection delivered a batch or stayed open long enough: start over at `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.ceilings = self.policy.ceilings();
    }

    /// Keeps a server's `retry:` (ms, clamped) as the floor of every later wait.
    pub fn set_retry(&mut self, retry_ms: u64) {
        self.retry_floor = Some(self.policy.clamp_retry(retry_ms));
    }

    /// The current `retry:` floor, if the server ever sent one.
    pub fn retry_floor(&self) -> Option<Duration> {
        self.retry_floor
    }

    /// The wait after one more failure of the given kind; counts the failure.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, delay: Delay, rng: &mut R) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.ceilings.next().unwrap_or(self.policy.cap);
        let (wait, floor) = match delay {
            Delay::Normal { retry_after } => {
                (jitter(ceiling.min(self.policy.cap), rng), retry_after)
            }
            Delay::Long => (jitter(self.policy.long, rng), None),
        };
        wait.max(floor.unwrap_or(Duration::ZERO))
            .max(self.retry_floor.unwrap_or(Duration::ZERO))
    }

    /// The wait after a planned close (`reconnect`, `end`): `max(retry:, planned_min)`
    /// plus up to `planned_jitter`. Not a failure: the counter is unchanged.
    pub fn planned_delay<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let base = self
            .retry_floor
            .unwrap_or(Duration::ZERO)
            .max(self.policy.planned_min);
        base + uniform(Duration::ZERO, self.policy.planned_jitter, rng)
    }
}

/// The actual wait for a ceiling `d`: uniform in `[d/2, d]`.
pub fn jitter<R: Rng + ?Sized>(d: Duration, rng: &mut R) -> Duration {
    uniform(d / 2, d, rng)
}

/// Parses a `Retry-After` value, delay-seconds or an HTTP date, relative to `now`, and
/// clamps it with the policy. `None` for a value that is neither.
pub fn parse_retry_after(
    value: &str,
    now: DateTime<Utc>,
    policy: &BackoffPolicy,
) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only; too many digits saturate to the clamp.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(policy.clamp_retry_after(Duration::from_secs(secs)));
    }
    let at = http_date(value)?;
    // A date in the past means "now": the clamp lifts it to the minimum.
    let delta = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(policy.clamp_retry_after(delta))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 and asctime forms.
fn http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc2822(value) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
            return Some(t.and_utc());
        }
    }
    None
}

fn uniform<R: Rng + ?Sized>(lo: Duration, hi: Duration, rng: &mut R) -> Duration {
    if hi <= lo {
        return lo;
    }
    let lo_ns = u64::try_from(lo.as_nanos()).unwrap_or(u64::MAX);
    let hi_ns = u64::try_from(hi.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.random_range(lo_ns..=hi_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// An RNG that always returns the same word: 0 draws the low end of a range,
    /// `u64::MAX` the high end.
    struct Fixed(u64);

    impl rand::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            (self.0 >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for (i, b) in dst.iter_mut().enumerate() {
                *b = self.0.to_le_bytes()[i % 8];
            }
        }
    }

    #[test]
    fn ceilings_double_from_one_second_and_cap_at_sixty() {
        let p = BackoffPolicy::default();
        let got: Vec<_> = (1..=9).map(|n| p.normal_ceiling(n)).collect();
        assert_eq!(
            got,
            [S(1), S(2), S(4), S(8), S(16), S(32), S(60), S(60), S(60)]
        );
        assert_eq!(p.normal_ceiling(0), S(1));
        assert_eq!(p.normal_ceiling(u32::MAX), S(60));
    }

    #[test]
    fn normal_waits_stay_in_half_to_full_ceiling_and_never_exceed_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut b = Backoff::new(BackoffPolicy::default());
        for n in 1..=40u32 {
            let d = BackoffPolicy::default().normal_ceiling(n);
            let w = b.next_delay(Delay::Normal { retry_after: None }, &mut rng);
            assert!(
                w >= d / 2 && w <= d,
                "failure {n}: {w:?} not in [{:?}, {d:?}]",
                d / 2
            );
            assert!(w <= S(60));
            assert_eq!(b.failures(), n);
        }
    }

    #[test]
    fn jitter_reaches_both_ends_of_its_range() {
        // Fixed(0) always draws the lowest value, u64::MAX the highest.
        assert_eq!(jitter(S(8), &mut Fixed(0)), S(4));
        assert_eq!(jitter(S(8), &mut Fixed(u64::MAX)), S(8));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<_> = (0..200).map(|_| jitter(S(10), &mut rng)).collect();
        assert!(draws.iter().all(|d| *d >= S(5) && *d <= S(10)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(6000)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(9000)));
    }

    #[test]
    fn long_backoff_is_three_hundred_seconds_jittered() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let lo = b.next_delay(Delay::Long, &mut Fixed(0));
        let hi = b.next_delay(Delay::Long, &mut Fixed(u64::MAX));
        assert_eq!((lo, hi), (S(150), S(300)));
    }

    #[test]
    fn reset_starts_over_at_the_base() {
        let mut rng = Fixed(u64::MAX);
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..5 {
            b.next_delay(Delay::Normal { retry_after: None }, &mut rng);
        }
        assert_eq!(
            b.next_delay(Delay::Normal { retry_after: None }, &mut rng),
            S(32)
        );
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(
            b.next_delay(Delay::Normal { retry_after: None }, &mut rng),
            S(1)
        );
    }

    #[test]
    fn retry_field_is_a_clamped_floor_for_every_wait() {
        let mut rng = Fixed(0);
        let mut b = Backoff::new(BackoffPolicy::default());
        b.set_retry(5_000);
        assert_eq!(
            b.next_delay(Delay::Normal { retry_after: None }, &mut rng),
            S(5)
        );
        b.set_retry(3_600_000);
        assert_eq!(b.retry_floor(), Some(S(600)));
        assert_eq!(b.next_delay(Delay::Long, &mut rng), S(600));
    }

    #[test]
    fn retry_after_is_a_floor_and_clamped() {
        let p = BackoffPolicy::default();
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now, &p), Some(S(120)));
        assert_eq!(parse_retry_after("0", now, &p), Some(S(1)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now, &p),
            Some(S(900))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now, &p),
            Some(S(30))
        );
        assert_eq!(
            parse_retry_after("Sunday, 22-Nov-26 12:01:00 GMT", now, &p),
            Some(S(60))
        );
        assert_eq!(
            parse_retry_after("Sun Nov 22 12:00:10 2026", now, &p),
            Some(S(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now, &p),
            Some(S(1))
        );
        assert_eq!(parse_retry_after("soon", now, &p), None);
        assert_eq!(parse_retry_after("-5", now, &p), None);

        let mut b = Backoff::new(p);
        let w = b.next_delay(
            Delay::Normal {
                retry_after: Some(S(20)),
            },
            &mut Fixed(0),
        );
        assert_eq!(w, S(20));
        // The normal delay wins when it is larger.
        for _ in 0..7 {
            b.next_delay(Delay::Normal { retry_after: None }, &mut Fixed(0));
        }
        let w = b.next_delay(
            Delay::Normal {
                retry_after: Some(S(2)),
            },
            &mut Fixed(u64::MAX),
        );
        assert_eq!(w, S(60));
    }

    #[test]
    fn planned_close_waits_retry_or_one_second_plus_small_jitter() {
        let mut b = Backoff::new(BackoffPolicy::default());
        assert_eq!(b.planned_delay(&mut Fixed(0)), S(1));
        assert_eq!(
            b.planned_delay(&mut Fixed(u64::MAX)),
            Duration::from_millis(1250)
        );
        b.set_retry(200);
        assert_eq!(b.planned_delay(&mut Fixed(0)), S(1));
        b.set_retry(2_000);
        assert_eq!(b.planned_delay(&mut Fixed(0)), S(2));
        // Planned closes are not failures.
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn a_shortened_policy_scales_everything() {
        let p = BackoffPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(40),
            ..BackoffPolicy::default()
        };
        let got: Vec<_> = (1..=4).map(|n| p.normal_ceiling(n)).collect();
        let ms = |v: u64| Duration::from_millis(v);
        // backon multiplies in f32; allow a microsecond of rounding.
        for (g, want) in got.iter().zip([ms(10), ms(20), ms(40), ms(40)]) {
            assert!(
                g.abs_diff(want) < Duration::from_micros(1),
                "{g:?} vs {want:?}"
            );
        }
    }
}
