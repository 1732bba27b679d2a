//! Event ids: UUIDv7 (RFC 9562) whose timestamp is the event's `created_time`.
//!
//! Layout of the 128 bits: 48-bit Unix time in ms, version `7`, 12 `rand_a` bits used
//! as a counter, RFC 4122 variant `10`, then 62 random bits from the seeded generator.
//! The counter starts at a random value in the lower half of its range on each new
//! millisecond and counts up within it, so ids are strictly increasing even when two
//! events share a millisecond; when it would overflow, the clock moves on by 1 ms.

use rand::Rng;

/// Hands out strictly increasing UUIDv7 values together with their millisecond.
#[derive(Debug, Clone)]
pub struct IdClock {
    last_ms: i64,
    counter: u16,
}

/// The largest value of the 12-bit counter.
const COUNTER_MAX: u16 = 0x0fff;

impl IdClock {
    /// A clock that has issued nothing yet.
    pub fn new() -> IdClock {
        IdClock {
            last_ms: i64::MIN,
            counter: 0,
        }
    }

    /// The next id for an event wanted at `wanted_ms`. Returns the millisecond actually
    /// used (never earlier than the previous one) and the id.
    pub fn next(&mut self, wanted_ms: i64, rng: &mut impl Rng) -> (i64, u128) {
        let mut ms = wanted_ms.max(self.last_ms);
        if ms == self.last_ms {
            if self.counter < COUNTER_MAX {
                self.counter += 1;
            } else {
                ms += 1;
                self.counter = fresh_counter(rng);
            }
        } else {
            self.counter = fresh_counter(rng);
        }
        self.last_ms = ms;
        let rand_b: u64 = rng.random::<u64>() & ((1 << 62) - 1);
        (ms, compose(ms, self.counter, rand_b))
    }
}

impl Default for IdClock {
    fn default() -> Self {
        IdClock::new()
    }
}

/// Lays the parts out as a UUIDv7.
pub fn compose(ms: i64, counter: u16, rand_b: u64) -> u128 {
    // Times before 1970 cannot occur for generated events; clamping keeps the layout
    // well-formed instead of wrapping.
    let ms = u128::from(u64::try_from(ms).unwrap_or(0)) & 0xffff_ffff_ffff;
    (ms << 80)
        | (0x7 << 76)
        | (u128::from(counter & COUNTER_MAX) << 64)
        | (0b10 << 62)
        | u128::from(rand_b & ((1 << 62) - 1))
}

/// The canonical hyphenated lowercase text of an id.
pub fn format(id: u128) -> String {
    uuid::Uuid::from_u128(id).hyphenated().to_string()
}

/// Parses any hyphenated (or simple) UUID text.
pub fn parse(text: &str) -> Option<u128> {
    uuid::Uuid::try_parse(text).ok().map(|uuid| uuid.as_u128())
}

/// A random UUIDv4 from the seeded generator, for guids inside events.
pub fn random_v4(rng: &mut impl Rng) -> String {
    let bits: u128 = rng.random();
    let bits = (bits & !(0xf << 76) & !(0b11 << 62)) | (0x4 << 76) | (0b10 << 62);
    format(bits)
}

fn fresh_counter(rng: &mut impl Rng) -> u16 {
    // The lower half leaves room for at least 2048 ids in the same millisecond.
    rng.random_range(0..0x0800)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn ids_are_v7_with_the_timestamp_and_increase_within_a_millisecond() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut clock = IdClock::new();
        let ms = 1_793_866_364_318; // 2026-11-05T08:12:44.318Z
        let mut previous = 0u128;
        let mut counters = Vec::new();
        for _ in 0..5 {
            let (used, id) = clock.next(ms, &mut rng);
            assert_eq!(used, ms);
            assert!(id > previous, "strictly increasing");
            previous = id;
            let uuid = uuid::Uuid::from_u128(id);
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert_eq!((id >> 80) as i64, ms);
            counters.push(((id >> 64) & 0xfff) as u16);
        }
        assert!(
            counters.windows(2).all(|w| w[1] == w[0] + 1),
            "{counters:?}"
        );
        // An earlier wanted time never moves the clock back.
        let (used, id) = clock.next(ms - 10, &mut rng);
        assert_eq!(used, ms);
        assert!(id > previous);
    }

    #[test]
    fn the_counter_overflows_into_the_next_millisecond() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut clock = IdClock::new();
        let mut previous = 0;
        let mut last_ms = 0;
        for _ in 0..5000 {
            let (ms, id) = clock.next(1000, &mut rng);
            assert!(id > previous);
            previous = id;
            last_ms = ms;
        }
        assert!(last_ms > 1000);
    }

    #[test]
    fn text_round_trips() {
        let id = compose(1_793_866_364_318, 5, 42);
        assert_eq!(parse(&format(id)), Some(id));
        assert_eq!(parse("nonsense"), None);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v4 = random_v4(&mut rng);
        let uuid = uuid::Uuid::try_parse(&v4).expect("a uuid");
        assert_eq!(uuid.get_version_num(), 4);
    }
}
