//! The open-files limit. Every tenant holds sockets (the stream, the token endpoint,
//! the syslog destination) and briefly files (the state file it saves, the dead-letter
//! file), and `metrics_listen` holds one descriptor per connection. Many systems start
//! services with a soft limit of 1024 while allowing far more, so the process raises
//! its soft limit to the hard limit at start ([`raise`]) and says so when even that
//! leaves too little room for the configured tenants ([`shortfall`]).

/// Descriptors a tenant may hold at once: the stream and token connections, the syslog
/// connection, and a file being written.
pub const PER_TENANT: u64 = 4;

/// Descriptors the process needs whatever the tenants: the runtime, the log, listeners,
/// name resolution, and headroom.
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

/// How many descriptors `tenants` tenants and `metrics_connections` metrics
/// connections need, if `limit` is less than that.
pub fn shortfall(limit: u64, tenants: usize, metrics_connections: usize) -> Option<u64> {
    let needed = BASELINE
        .saturating_add((tenants as u64).saturating_mul(PER_TENANT))
        .saturating_add(metrics_connections as u64);
    (limit < needed).then_some(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_grows_with_tenants_and_metrics_connections() {
        assert_eq!(shortfall(1024, 1, 0), None);
        assert_eq!(shortfall(1024, 240, 0), None);
        assert_eq!(shortfall(1024, 241, 0), Some(1028));
        assert_eq!(shortfall(1024, 232, 32), None);
        assert_eq!(shortfall(1024, 233, 32), Some(1028));
        assert_eq!(shortfall(0, 0, 0), Some(BASELINE));
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
