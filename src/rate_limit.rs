//! How fast records may reach one destination: `max_events_per_second`, a token bucket.
//!
//! A bucket holds at most [`RateLimit::burst`] records' worth of credit and refills
//! at `max_events_per_second`. Sending `n` records takes `n` from it; when there is
//! not enough, [`RateLimit::reserve`] says how long to wait first. So over any
//! stretch of time `t`, at most `rate × t + burst` records go out, and a destination
//! that is kept busy gets exactly `rate` per second on average.
//!
//! The burst depends on the destination (at least one record either way, and never
//! more than the one second's worth the contract allows):
//!
//! - **syslog**: a twentieth of a second's worth ([`SYSLOG_BURST`]). QRadar counts
//!   events per second against its licence; a small burst keeps every one- and
//!   two-second window within 5 % and 2.5 % of the limit, even right after the
//!   destination was idle. A backlog is not slowed by it: the average is the limit.
//! - **Splunk HEC**: one second's worth ([`HEC_BURST`]). The writer sends each HEC
//!   request itself and waits for the answer (100 ms or more to Splunk Cloud); with a
//!   small burst that time would be lost at every request and the destination would
//!   get well below its limit. Splunk licenses volume per day, not events per second,
//!   and the records of one request arrive together anyway.
//!
//! The limit is the receiver's: every tenant sending to the same receiver with the
//! same limit draws from one [`SharedLimit`] (a `[destination:NAME]` used by several
//! tenants, or `[syslog]` where no tenant overrides its address or limit). A tenant
//! whose `syslog_*` overrides send elsewhere, or at another limit, has its own.
//!
//! [`RateLimit`] is arithmetic only: the caller passes the time (tokio's clock in the
//! writer, so tests can pause it) and does the waiting. It never drops or reorders
//! anything; what to do while waiting is the writer's business.

use crate::config::DestinationConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// The burst of a syslog destination: a twentieth of a second's worth.
pub const SYSLOG_BURST: Duration = Duration::from_millis(50);

/// The burst of a Splunk HEC destination: one second's worth.
pub const HEC_BURST: Duration = Duration::from_secs(1);

/// The token bucket of one receiver, shared by every pair sending there: what one
/// pair reserves, the others wait for.
#[derive(Debug, Clone)]
pub struct SharedLimit {
    bucket: Arc<Mutex<RateLimit>>,
    burst: u32,
}

/// The buckets in use, by receiver (its description) and limit; a bucket no pair
/// holds any more is dropped and its entry replaced when asked for again.
type Buckets = HashMap<(String, u32, u32), Weak<Mutex<RateLimit>>>;

impl SharedLimit {
    /// The bucket of `destination`'s receiver at its limit, shared with every other
    /// pair that sends there at the same limit; `None` without a limit.
    pub fn for_destination(destination: &DestinationConfig) -> Option<Self> {
        static BUCKETS: OnceLock<Mutex<Buckets>> = OnceLock::new();
        let limit = RateLimit::for_destination(destination)?;
        let key = (destination.description(), limit.per_second, limit.burst);
        let burst = limit.burst;
        let mut buckets = BUCKETS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        buckets.retain(|_, bucket| bucket.strong_count() > 0);
        let bucket = match buckets.get(&key).and_then(Weak::upgrade) {
            Some(bucket) => bucket,
            None => {
                let bucket = Arc::new(Mutex::new(limit));
                buckets.insert(key, Arc::downgrade(&bucket));
                bucket
            }
        };
        Some(Self { bucket, burst })
    }

    /// See [`RateLimit::burst`].
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// See [`RateLimit::reserve`]; the reservation counts for every holder.
    pub fn reserve(&self, n: u32, now: Instant) -> Duration {
        self.bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(n, now)
    }
}

/// The token bucket of one destination.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
    /// When the bucket is full again (`None`: it is full now, nothing was sent yet).
    full_at: Option<Instant>,
}

impl RateLimit {
    /// The limit of `destination`, with its burst; `None` without one.
    pub fn for_destination(destination: &DestinationConfig) -> Option<Self> {
        let burst = match destination {
            DestinationConfig::Syslog { .. } => SYSLOG_BURST,
            DestinationConfig::SplunkHec(_) => HEC_BURST,
        };
        Self::new(destination.max_events_per_second(), burst)
    }

    /// A limit of `per_second` records per second, with bursts of `burst`'s worth (at
    /// least one record); `None` for 0 (no limit).
    pub fn new(per_second: u32, burst: Duration) -> Option<Self> {
        let records = u128::from(per_second) * burst.as_nanos() / 1_000_000_000;
        (per_second > 0).then(|| Self {
            per_second,
            burst: u32::try_from(records).unwrap_or(u32::MAX).max(1),
            full_at: None,
        })
    }

    /// Records per second on average.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// The most records that go out at once after the destination was idle. The
    /// caller hands over at most this many at a time; a larger `n` is still paced
    /// correctly on average, but goes out in one go.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Takes `n` records' worth from the bucket at `now` and returns how long to wait
    /// before sending them (zero when there was enough credit). The credit is taken at
    /// once, so the next call already counts these records.
    pub fn reserve(&mut self, n: u32, now: Instant) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let full_at = self.full_at.unwrap_or(now).max(now);
        // The bucket holds `burst − rate × (full_at − now)`: enough for n once it is
        // within (burst − n) / rate of being full. With n above the burst that is
        // after it is full, which keeps the average right.
        let send_at = if n <= self.burst {
            full_at
                .checked_sub(self.span(self.burst - n))
                .unwrap_or(now)
                .max(now)
        } else {
            full_at + self.span(n - self.burst)
        };
        self.full_at = Some(full_at + self.span(n));
        send_at - now
    }

    /// The time the bucket takes to refill `records`, rounded up to the nanosecond
    /// (rounding the other way could let a few too many through over a long run).
    fn span(&self, records: u32) -> Duration {
        let nanos = (u128::from(records) * 1_000_000_000).div_ceil(u128::from(self.per_second));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimit::new(0, SYSLOG_BURST).is_none());
    }

    #[test]
    fn the_burst_is_a_twentieth_of_a_second_for_syslog_one_for_hec_and_at_least_one() {
        assert_eq!(RateLimit::new(500, HEC_BURST).map(|l| l.burst()), Some(500));
        assert_eq!(
            RateLimit::new(u32::MAX, HEC_BURST).map(|l| l.burst()),
            Some(u32::MAX)
        );
        assert_eq!(
            RateLimit::new(500, SYSLOG_BURST).map(|l| l.burst()),
            Some(25)
        );
        assert_eq!(RateLimit::new(19, SYSLOG_BURST).map(|l| l.burst()), Some(1));
        assert_eq!(RateLimit::new(40, SYSLOG_BURST).map(|l| l.burst()), Some(2));
        assert_eq!(RateLimit::new(1, SYSLOG_BURST).map(|l| l.burst()), Some(1));
    }

    #[test]
    fn tenants_sending_to_one_receiver_at_one_limit_share_its_bucket() {
        // Two tenants on [syslog] 10.9.8.7, a third overriding the host: the first two
        // draw from one bucket, the third from its own.
        let config = crate::config::load_str_with_env(
            std::path::Path::new("c.ini"),
            "[lookout]\napi_domain = https://api.lookout.com\n\
             [lookout:a]\napi_key = ka\n[lookout:b]\napi_key = kb\n\
             [lookout:c]\napi_key = kc\nsyslog_host = 10.9.8.6\n\
             [syslog]\nprotocol = tcp\nhost = 10.9.8.7\nport = 5514\nmax_events_per_second = 100\n",
            &|_| None,
        )
        .unwrap();
        let limit = |tenant: usize| {
            SharedLimit::for_destination(&config.tenants[tenant].destinations[0]).unwrap()
        };
        let (a, b, c) = (limit(0), limit(1), limit(2));
        let now = Instant::now();
        // The burst is 5 records (50 ms at 100/s): a takes it all, b then waits 100 ms
        // for 10 more, as a would have; c, elsewhere, goes at once.
        assert_eq!(a.burst(), 5);
        assert_eq!(a.reserve(5, now), Duration::ZERO);
        assert_eq!(b.reserve(10, now), ms(100));
        assert_eq!(c.reserve(5, now), Duration::ZERO);
        // Once nobody holds a receiver's bucket, a new holder starts with a full one.
        drop((a, b));
        assert_eq!(limit(0).reserve(5, now), Duration::ZERO);
    }

    #[test]
    fn a_full_bucket_lets_the_burst_through_then_paces_at_the_rate() {
        let mut limit = RateLimit::new(200, SYSLOG_BURST).expect("a limit");
        let t0 = Instant::now();
        // 10 records of credit: the first 10 at once.
        assert_eq!(limit.reserve(10, t0), Duration::ZERO);
        // Empty now: each further record waits 5 ms more.
        assert_eq!(limit.reserve(1, t0), ms(5));
        assert_eq!(limit.reserve(1, t0), ms(10));
        assert_eq!(limit.reserve(5, t0), ms(35));
    }

    #[test]
    fn idle_time_refills_up_to_the_burst_only() {
        let mut limit = RateLimit::new(200, SYSLOG_BURST).expect("a limit");
        let t0 = Instant::now();
        assert_eq!(limit.reserve(10, t0), Duration::ZERO);
        // An hour idle refills 10 records' worth, not 720,000.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(limit.reserve(10, later), Duration::ZERO);
        assert_eq!(limit.reserve(1, later), ms(5));
    }

    #[test]
    fn more_than_the_burst_at_once_waits_for_the_excess() {
        let mut limit = RateLimit::new(200, SYSLOG_BURST).expect("a limit");
        let t0 = Instant::now();
        // 30 records: 10 from the full bucket, 20 more take 100 ms.
        assert_eq!(limit.reserve(30, t0), ms(100));
        // Empty at 100 ms, full again at 150 ms: then 10 go at once, and the next
        // one waits for its refill.
        assert_eq!(limit.reserve(10, t0 + ms(150)), Duration::ZERO);
        assert_eq!(limit.reserve(1, t0 + ms(150)), ms(5));
    }

    #[test]
    fn a_sustained_backlog_gets_the_rate_exactly() {
        let mut limit = RateLimit::new(500, SYSLOG_BURST).expect("a limit");
        let t0 = Instant::now();
        let mut now = t0;
        let mut sent = 0u32;
        // 20-record pieces, each sent as soon as allowed, for 10 seconds' worth.
        while sent < 5000 {
            now += limit.reserve(20, now);
            sent += 20;
        }
        // 5000 records at 500/s with 25 of burst: the last piece goes at
        // (5000 − 25) / 500 = 9.95 s.
        assert_eq!(now - t0, ms(9950));
    }

    /// The sends, as (records, when), of a sender that sends each of `pieces`
    /// (records, idle ms before it) as soon as the limit allows.
    fn schedule(rate: u32, burst: Duration, pieces: &[(u32, u64)]) -> Vec<(u32, Instant)> {
        let mut limit = RateLimit::new(rate, burst).expect("a limit");
        let burst = limit.burst();
        let mut now = Instant::now();
        let mut sends = Vec::new();
        for &(n, gap) in pieces {
            let n = n.clamp(1, burst);
            now += ms(gap);
            now += limit.reserve(n, now);
            sends.push((n, now));
        }
        sends
    }

    proptest! {
        #[test]
        fn no_window_holds_more_than_rate_times_length_plus_burst(
            rate in 1u32..5000,
            burst_ms in 1u64..=1000,
            pieces in prop::collection::vec((1u32..600, prop_oneof![3 => Just(0u64), 1 => 0u64..3000]), 1..200),
        ) {
            let sends = schedule(rate, ms(burst_ms), &pieces);
            let burst = (u128::from(rate) * u128::from(burst_ms) / 1000).max(1);
            let rate = u128::from(rate);
            // Every window that starts and ends at a send is the tightest of its kind.
            // Each send may come up to 1 ns early (spans are rounded to whole ns).
            for (i, &(_, start)) in sends.iter().enumerate() {
                let mut records = 0u128;
                for (k, &(n, at)) in sends[i..].iter().enumerate() {
                    records += u128::from(n);
                    let nanos = (at - start).as_nanos() + k as u128 + 1;
                    prop_assert!(
                        records * 1_000_000_000 <= rate * nanos + burst * 1_000_000_000,
                        "{records} records in {nanos} ns at {rate}/s with a burst of {burst}"
                    );
                }
            }
        }

        #[test]
        fn a_backlog_is_never_slower_than_the_rate(
            rate in 1u32..5000,
            burst_ms in 1u64..=1000,
            sizes in prop::collection::vec(1u32..600, 1..200),
        ) {
            let pieces: Vec<(u32, u64)> = sizes.iter().map(|&n| (n, 0)).collect();
            let sends = schedule(rate, ms(burst_ms), &pieces);
            let burst = (u64::from(rate) * burst_ms / 1000).max(1);
            let total: u64 = sends.iter().map(|&(n, _)| u64::from(n)).sum();
            let first = sends[0].1;
            let last = sends[sends.len() - 1].1;
            // The last piece goes no later than the rate requires (1 µs of rounding
            // per piece at most).
            let needed = total.saturating_sub(burst) as f64 / f64::from(rate);
            let slack = sends.len() as f64 * 1e-6;
            prop_assert!((last - first).as_secs_f64() <= needed + slack);
        }
    }
}
