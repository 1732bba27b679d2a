//! Live events: after the history, `rate` new events per second per tenant, with
//! `created_time` set to the moment they are generated.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::generate::Generator;
use super::state::Tenant;

/// Adds events to `tenant` at `rate` per second until cancelled. The count is kept
/// against elapsed time, so a late tick catches up instead of drifting.
pub async fn run(
    tenant: Arc<Tenant>,
    mut generator: Generator,
    rate: u32,
    cancel: CancellationToken,
) {
    if rate == 0 {
        return;
    }
    // Ticks faster than every 10 ms gain nothing; several events are made per tick.
    let period = Duration::from_secs(1)
        .checked_div(rate)
        .unwrap_or(Duration::from_millis(10))
        .max(Duration::from_millis(10));
    let started = Instant::now();
    let mut ticker = tokio::time::interval_at(started + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut produced: u128 = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let due = started.elapsed().as_millis() * u128::from(rate) / 1000;
        while produced < due {
            let now = chrono::Utc::now().timestamp_millis();
            tenant.log.push(generator.next_event(now));
            produced += 1;
        }
    }
}
