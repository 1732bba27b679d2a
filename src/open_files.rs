//! The open-files limit. Every tenant holds a connection to its stream and one to each
//! of its destinations, and briefly a file (the state file it saves, the dead-letter
//! file); `metrics_listen` holds one descriptor per connection. Many systems start
//! services with a soft limit of 1024 while allowing far more, so the process raises
//! its soft limit to the hard limit at start ([`raise`]) and says so when even that
//! leaves too little room for the configured tenants ([`needed`], [`shortfall`]).

/// Descriptors the process needs whatever the tenants: the runtime, the log, listeners,
/// name resolution, token requests, state and dead-letter files being written, and
/// headroom.
pub const BASELINE: u64 = 64;

/// The soft limit after [`raise`], and whether it was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub raised_from: Option<u64>,
}

/// Raises the soft limit on open files to the hard limit. Errors are the system's.
pub fn raise() -> nix::Result<Limit> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(Limit {
            soft,
            raised_from: None,
        });
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(Limit {
        soft: hard,
        raised_from: Some(soft),
    })
}

/// Descriptors the process needs: [`BASELINE`], then per (tenant, destination) pair
/// one connection for the pair's own stream and one to its destination
/// (`destinations` holds each tenant's count of destinations), then
/// `metrics_connections`.
pub fn needed(destinations: impl IntoIterator<Item = usize>, metrics_connections: usize) -> u64 {
    destinations
        .into_iter()
        .fold(BASELINE, |sum, d| sum.saturating_add(2 * d as u64))
        .saturating_add(metrics_connections as u64)
}

/// `needed` if `limit` is less than that.
pub fn shortfall(limit: u64, needed: u64) -> Option<u64> {
    (limit < needed).then_some(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_is_a_stream_and_a_destination_connection_per_pair() {
        assert_eq!(needed([], 0), BASELINE);
        assert_eq!(needed([1], 0), BASELINE + 2);
        assert_eq!(needed([1, 3], 32), BASELINE + 2 + 6 + 32);
        assert_eq!(needed(vec![2; 500], 0), needed(vec![1; 1000], 0));
        // 1,000 tenants with one destination each need 2,000 connections: more than a
        // soft limit of 1,024, which 480 such tenants still fit.
        assert_eq!(needed(vec![1; 1000], 0), 2064);
        assert_eq!(shortfall(1024, needed(vec![1; 480], 0)), None);
        assert_eq!(shortfall(1024, needed(vec![1; 481], 0)), Some(1026));
        assert_eq!(shortfall(1024, needed(vec![1; 464], 32)), None);
        assert_eq!(shortfall(1024, needed(vec![1; 465], 32)), Some(1026));
        assert_eq!(shortfall(4096, needed(vec![1; 1000], 32)), None);
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_limit() {
        let limit = raise().unwrap();
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
        assert_eq!(limit.soft, soft);
    }
}
