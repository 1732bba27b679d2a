//! The (tenant, destination) pairs a configuration asks for, and what changes between
//! two such sets: the pure half of a reload (SIGHUP).
//!
//! A [`PairSpec`] is everything one pair is started from: the tenant's settings, the
//! one destination it delivers to, the proxy and the commit interval. Two specs are
//! equal exactly when a running pair would behave the same under either, so a reload
//! can leave an equal pair alone: no new token, no new stream, no new connection.
//! Secrets (API key, HEC token, proxy password) compare by value; they never print
//! ([`crate::config::Secret`]).
//!
//! [`diff`] compares the running set with the wanted one and sorts every pair into
//! start, stop, restart or unchanged. It does no I/O; `app` does the starting and
//! stopping.

use crate::config::{Config, DestinationConfig, ProxyConfig, TenantConfig};
use crate::tenant::PairRole;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A pair's identity: the tenant's `entity_name` and the destination's name. It names
/// the pair's state file, so a pair keeps its position across reloads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairKey {
    pub tenant: String,
    pub destination: String,
}

impl fmt::Display for PairKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.tenant, self.destination)
    }
}

/// What one pair is started from.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSpec {
    /// The tenant, with `destinations` narrowed to [`PairSpec::destination`] alone, so
    /// that adding or removing another destination of the tenant does not count as a
    /// change of this pair.
    pub tenant: TenantConfig,
    /// The destination (also `tenant.destinations[0]`).
    pub destination: DestinationConfig,
    /// What the pair does for the whole tenant (from its full list of destinations).
    pub role: PairRole,
    pub proxy: ProxyConfig,
    pub commit_interval: Duration,
}

impl PairSpec {
    /// The spec of `tenant` delivering to `destination` under `config`'s proxy and
    /// commit interval.
    pub fn new(config: &Config, tenant: &TenantConfig, destination: &DestinationConfig) -> Self {
        let role = PairRole::of(tenant, destination);
        let mut tenant = tenant.clone();
        tenant.destinations = vec![destination.clone()];
        Self {
            tenant,
            destination: destination.clone(),
            role,
            proxy: config.proxy.clone(),
            commit_interval: config.connector.commit_interval,
        }
    }

    /// Its identity.
    pub fn key(&self) -> PairKey {
        PairKey {
            tenant: self.tenant.entity_name.clone(),
            destination: self.destination.name().to_owned(),
        }
    }
}

/// Every pair `config` asks for, in file order (tenants, then each tenant's
/// destinations). Keys are unique: the loader rejects duplicate tenant names and
/// duplicate destinations of one tenant.
pub fn wanted(config: &Config) -> Vec<PairSpec> {
    config
        .tenants
        .iter()
        .flat_map(|tenant| {
            tenant
                .destinations
                .iter()
                .map(move |destination| PairSpec::new(config, tenant, destination))
        })
        .collect()
}

/// What a reload does to each pair.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes<K> {
    /// Wanted, not running: start.
    pub start: Vec<K>,
    /// Running, not wanted: stop (deliver what was read, commit, close).
    pub stop: Vec<K>,
    /// Running and wanted with other settings: stop, then start from the saved position.
    pub restart: Vec<K>,
    /// Running and wanted with the same settings: leave alone.
    pub unchanged: Vec<K>,
}

/// Sorts every key of `running` and `wanted` into [`Changes`]. Generic so that the
/// rule can be tested with plain values; `app` calls it with [`PairKey`] and
/// [`PairSpec`]. Each list is in key order.
pub fn diff<K: Ord + Clone, V: PartialEq>(
    running: &BTreeMap<K, V>,
    wanted: &BTreeMap<K, V>,
) -> Changes<K> {
    let mut changes = Changes {
        start: Vec::new(),
        stop: Vec::new(),
        restart: Vec::new(),
        unchanged: Vec::new(),
    };
    for (key, old) in running {
        match wanted.get(key) {
            None => changes.stop.push(key.clone()),
            Some(new) if new == old => changes.unchanged.push(key.clone()),
            Some(_) => changes.restart.push(key.clone()),
        }
    }
    changes.start = wanted
        .keys()
        .filter(|key| !running.contains_key(*key))
        .cloned()
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn map(pairs: &[(&'static str, u8)]) -> BTreeMap<&'static str, u8> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn each_pair_lands_in_exactly_the_list_its_change_says() {
        let running = map(&[("kept", 1), ("changed", 1), ("gone", 1)]);
        let wanted = map(&[("kept", 1), ("changed", 2), ("new", 1)]);
        assert_eq!(
            diff(&running, &wanted),
            Changes {
                start: vec!["new"],
                stop: vec!["gone"],
                restart: vec!["changed"],
                unchanged: vec!["kept"],
            }
        );
    }

    #[test]
    fn the_same_set_changes_nothing_and_empty_sets_start_or_stop_everything() {
        let set = map(&[("a", 1), ("b", 2)]);
        let same = diff(&set, &set);
        assert_eq!(same.unchanged, vec!["a", "b"]);
        assert!(same.start.is_empty() && same.stop.is_empty() && same.restart.is_empty());
        assert_eq!(diff(&BTreeMap::new(), &set).start, vec!["a", "b"]);
        assert_eq!(diff(&set, &BTreeMap::new()).stop, vec!["a", "b"]);
    }

    proptest! {
        /// Every key of either side is in exactly one list, and the list is the one
        /// the rule names.
        #[test]
        fn every_key_is_sorted_once_by_the_rule(
            running in proptest::collection::btree_map(0u8..16, 0u8..3, 0..12),
            wanted in proptest::collection::btree_map(0u8..16, 0u8..3, 0..12),
        ) {
            let c = diff(&running, &wanted);
            let all: Vec<u8> = [&c.start, &c.stop, &c.restart, &c.unchanged]
                .into_iter()
                .flatten()
                .copied()
                .collect();
            let unique: BTreeSet<u8> = all.iter().copied().collect();
            prop_assert_eq!(all.len(), unique.len());
            let keys: BTreeSet<u8> = running.keys().chain(wanted.keys()).copied().collect();
            prop_assert_eq!(&unique, &keys);
            for k in &c.start { prop_assert!(!running.contains_key(k) && wanted.contains_key(k)); }
            for k in &c.stop { prop_assert!(running.contains_key(k) && !wanted.contains_key(k)); }
            for k in &c.restart { prop_assert!(running[k] != wanted[k]); }
            for k in &c.unchanged { prop_assert!(running[k] == wanted[k]); }
        }
    }

    const BASE: &str = "[lookout]\nentity_name = acme\napi_domain = https://api.example\n\
                        api_key = key-one\n\
                        [lookout:beta]\napi_key = key-beta\n\
                        [syslog]\nhost = 127.0.0.1\nprotocol = tcp\nport = 1514\n";

    fn specs(text: &str) -> BTreeMap<PairKey, PairSpec> {
        let config = load_str(Path::new("config.ini"), text).expect("valid test config");
        wanted(&config).into_iter().map(|s| (s.key(), s)).collect()
    }

    fn keys(list: &[PairKey]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_config_gives_one_spec_per_tenant_and_destination() {
        let text = format!(
            "{BASE}[destination:second]\ntype = syslog\nhost = 127.0.0.1\nport = 2514\nprotocol = tcp\n"
        );
        let all = specs(&text);
        let names: Vec<String> = all.keys().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["acme@second", "acme@syslog", "beta@second", "beta@syslog"]
        );
        for (key, spec) in &all {
            assert_eq!(spec.tenant.destinations, vec![spec.destination.clone()]);
            assert_eq!(&spec.key(), key);
            // The role comes from the tenant's whole list, not the narrowed one: only
            // the first destination's pair keeps undecodable items.
            assert_eq!(
                spec.role.keeps_source_dead_letters,
                key.destination == "syslog",
                "{key}"
            );
            assert_eq!(spec.role.names_destination, key.destination != "syslog");
        }
        let single = specs(BASE);
        assert!(single.values().all(|s| s.role.keeps_source_dead_letters));
    }

    #[test]
    fn a_spec_never_prints_a_secret() {
        let text = format!(
            "{BASE}[proxy]\naddress = http://127.0.0.1:3128\nusername = u\npassword = proxy-secret\n"
        );
        for spec in specs(&text).values() {
            let shown = format!("{spec:?}");
            for secret in ["key-one", "key-beta", "proxy-secret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
    }

    #[test]
    fn the_same_file_again_changes_nothing() {
        let c = diff(&specs(BASE), &specs(BASE));
        assert_eq!(keys(&c.unchanged), ["acme@syslog", "beta@syslog"]);
        assert!(c.start.is_empty() && c.stop.is_empty() && c.restart.is_empty());
    }

    #[test]
    fn a_changed_port_restarts_every_pair_on_that_destination_only() {
        let text = BASE.replace("port = 1514", "port = 1515");
        let one = format!("{BASE}[lookout:gamma]\napi_key = g\nsyslog_port = 1600\n");
        let two = one.replace("port = 1514", "port = 1515");
        let c = diff(&specs(BASE), &specs(&text));
        assert_eq!(keys(&c.restart), ["acme@syslog", "beta@syslog"]);
        // gamma overrides the port, so the [syslog] port does not touch it.
        let c = diff(&specs(&one), &specs(&two));
        assert_eq!(keys(&c.restart), ["acme@syslog", "beta@syslog"]);
        assert_eq!(keys(&c.unchanged), ["gamma@syslog"]);
    }

    #[test]
    fn a_changed_key_restarts_only_its_tenant() {
        let c = diff(
            &specs(BASE),
            &specs(&BASE.replace("key-beta", "key-beta-2")),
        );
        assert_eq!(keys(&c.restart), ["beta@syslog"]);
        assert_eq!(keys(&c.unchanged), ["acme@syslog"]);
    }

    #[test]
    fn process_wide_settings_that_tenants_run_on_restart_every_pair() {
        for changed in [
            format!("{BASE}[connector]\ncommit_interval_ms = 500\n"),
            format!("{BASE}[proxy]\naddress = http://127.0.0.1:3128\n"),
        ] {
            let c = diff(&specs(BASE), &specs(&changed));
            assert_eq!(
                keys(&c.restart),
                ["acme@syslog", "beta@syslog"],
                "{changed}"
            );
        }
    }

    #[test]
    fn adding_a_destination_to_a_tenant_starts_one_pair_and_leaves_its_others() {
        let two = format!(
            "{BASE}[destination:second]\ntype = syslog\nhost = 127.0.0.1\nport = 2514\nprotocol = tcp\n"
        )
        .replace(
            "api_key = key-beta\n",
            "api_key = key-beta\ndestinations = syslog\n",
        );
        let one = BASE.replace(
            "api_key = key-beta\n",
            "api_key = key-beta\ndestinations = syslog\n",
        );
        let c = diff(&specs(&one), &specs(&two));
        assert_eq!(keys(&c.start), ["acme@second"]);
        assert_eq!(keys(&c.unchanged), ["acme@syslog", "beta@syslog"]);
        let back = diff(&specs(&two), &specs(&one));
        assert_eq!(keys(&back.stop), ["acme@second"]);
        assert_eq!(keys(&back.unchanged), ["acme@syslog", "beta@syslog"]);
    }

    #[test]
    fn removing_a_tenant_stops_its_pairs_and_adding_one_starts_them() {
        let without = BASE.replace("[lookout:beta]\napi_key = key-beta\n", "");
        let c = diff(&specs(BASE), &specs(&without));
        assert_eq!(keys(&c.stop), ["beta@syslog"]);
        assert_eq!(keys(&c.unchanged), ["acme@syslog"]);
        let c = diff(&specs(&without), &specs(BASE));
        assert_eq!(keys(&c.start), ["beta@syslog"]);
    }
}
