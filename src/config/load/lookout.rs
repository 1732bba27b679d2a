//! `[lookout]` and `[lookout:NAME]` → one [`TenantConfig`] per tenant.
//!
//! This module owns which sections are tenants and under what name, the inheritance of
//! `[lookout]` keys by `[lookout:NAME]` sections, unique entity names, the API key
//! precedence (`api_key_file` > `MRAV2_API_KEY_<NAME>` > `MRAV2_API_KEY` > `api_key`) and
//! the per-tenant stream settings. A tenant's syslog destination is read by
//! [`super::syslog`], through the tenant's `syslog_` overrides ([`Scope::syslog_keys`]).

use super::destination::Destinations;
use super::syslog::SyslogKeys;
use super::value::{
    BOOL_MSG, is_entity_name, is_event_id, parse_bool, parse_timestamp, parse_uint,
};
use super::{ApiKeys, Check, Entry, entry, file_reason};
use crate::config::raw::{RawIni, RawSection};
use crate::config::{Problem, Secret, SecretSource, TenantConfig};
use crate::event::{EventType, Position};
use crate::small_file;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The keys of `[lookout]` and `[lookout:NAME]` (besides the `syslog_` overrides).
pub const LOOKOUT_KEYS: &[&str] = &[
    "entity_name",
    "api_domain",
    "api_key",
    "api_key_file",
    "threat_enabled",
    "device_enabled",
    "audit_enabled",
    "smishing_enabled",
    "stream_position",
    "start_time",
    "sse_timeout",
    "ca_file",
    "max_event_size",
    "destinations",
];

const NAME_RULE: &str = "use letters, digits, '.', '_' and '-'";

/// The environment variable that holds the API key of `entity_name`:
/// `MRAV2_API_KEY_` + the name upper-cased with `.` and `-` written as `_`.
pub fn api_key_env_var(entity_name: &str) -> String {
    format!("MRAV2_API_KEY_{}", env_suffix(entity_name))
}

/// The sections one tenant reads its values from.
pub(super) struct Scope<'a> {
    /// The tenant's own section.
    own: &'a RawSection,
    /// `[lookout]`, when it is not `own`.
    defaults: Option<&'a RawSection>,
    /// `[syslog]`.
    syslog: Option<&'a RawSection>,
}

/// A tenant's scope, with its entity name entry when that decided it is a tenant.
type TenantScope<'a> = (Scope<'a>, Option<Entry<'a>>);

impl<'a> Scope<'a> {
    fn section_name(&self) -> &'a str {
        &self.own.name
    }

    /// A `[lookout]` key of this tenant: its own value, else the inherited one.
    fn lookout(&self, key: &str) -> Option<Entry<'a>> {
        let inheritable = !matches!(key, "entity_name" | "stream_position");
        entry(Some(self.own), key, false).or_else(|| {
            if inheritable {
                entry(self.defaults, key, false)
            } else {
                None
            }
        })
    }

    /// `[syslog]` as this tenant sees it: its own `syslog_K` > `[lookout]`'s `syslog_K` >
    /// `[syslog]` `K`.
    pub(super) fn syslog_keys(&self) -> SyslogKeys<'a> {
        SyslogKeys::with_overrides(self.syslog, [Some(self.own), self.defaults])
    }
}

impl Check<'_, '_> {
    /// Which sections are tenants. Without `[lookout:NAME]` sections, `[lookout]` is the
    /// one tenant; with them, `[lookout]` is a tenant too only if it sets `entity_name`.
    pub(super) fn tenant_scopes<'r>(&mut self, raw: &'r RawIni) -> Vec<TenantScope<'r>> {
        let lookout = raw.section("lookout");
        let named: Vec<&RawSection> = raw
            .sections
            .iter()
            .filter(|s| s.name.starts_with("lookout:"))
            .collect();
        let syslog = raw.section("syslog");

        let mut tenants = Vec::new();
        if named.is_empty() {
            if let Some(section) = lookout {
                let own = Scope {
                    own: section,
                    defaults: None,
                    syslog,
                };
                let name = own.lookout("entity_name");
                if name.is_none() {
                    self.problems.push(Problem::missing(
                        self.file,
                        "lookout",
                        "entity_name",
                        format!("missing; set entity_name to the tenant's name ({NAME_RULE})"),
                    ));
                }
                tenants.push((own, name));
            } else {
                self.problems.push(Problem::section(
                    self.file,
                    "lookout",
                    "missing; add a [lookout] section (or [lookout:NAME] sections) with entity_name, api_domain and api_key",
                ));
            }
        } else {
            if let Some(section) = lookout {
                let own = Scope {
                    own: section,
                    defaults: None,
                    syslog,
                };
                if let Some(name) = own.lookout("entity_name") {
                    tenants.push((own, Some(name)));
                } else if let Some(e) = entry(Some(section), "stream_position", false) {
                    self.warn(
                        e,
                        "not inherited by [lookout:NAME] sections (a position belongs to one tenant's stream); ignored",
                    );
                }
            }
            for section in named {
                let scope = Scope {
                    own: section,
                    defaults: lookout,
                    syslog,
                };
                tenants.push((scope, None));
            }
        }
        tenants
    }

    /// Validates every tenant, names unique. `None` if any tenant has a problem.
    pub(super) fn tenants(
        &mut self,
        tenants: &[TenantScope<'_>],
        defined: &Destinations,
    ) -> Option<Vec<TenantConfig>> {
        let n_tenants = tenants.len();
        let mut names: Vec<(String, String)> = Vec::new(); // (env suffix, section)
        let mut built = Vec::new();
        let mut all_ok = true;
        for (scope, name_entry) in tenants {
            let name = self.tenant_name(scope, *name_entry);
            if let Some(name) = &name {
                self.unique_name(scope, name, &mut names);
            }
            let tenant = self.tenant(scope, name, n_tenants, defined);
            all_ok &= tenant.is_some();
            built.extend(tenant);
        }
        all_ok.then_some(built)
    }

    /// The entity name: `entity_name`, else NAME of `[lookout:NAME]`.
    fn tenant_name(&mut self, scope: &Scope<'_>, name_entry: Option<Entry<'_>>) -> Option<String> {
        let section = scope.section_name();
        match name_entry {
            Some(e) => self.entity_name(e),
            None => match scope.lookout("entity_name") {
                Some(e) => self.entity_name(e),
                None => {
                    let name = section.strip_prefix("lookout:").unwrap_or(section);
                    if is_entity_name(name) {
                        Some(name.to_string())
                    } else {
                        self.problems.push(Problem::section(
                            self.file,
                            section,
                            format!(
                                "tenant name {name:?} is not usable as a file name; {NAME_RULE}"
                            ),
                        ));
                        None
                    }
                }
            },
        }
    }

    /// Reports `name` if an earlier tenant's name gives the same environment variable
    /// (and state file); records it otherwise. `names` holds (env suffix, section).
    fn unique_name(&mut self, scope: &Scope<'_>, name: &str, names: &mut Vec<(String, String)>) {
        let section = scope.section_name();
        let suffix = env_suffix(name);
        if let Some((_, other)) = names.iter().find(|(s, _)| *s == suffix) {
            let message = format!(
                "already used by [{other}]; entity names must be unique ignoring letter case and treating '.', '-' and '_' alike (they name state files and MRAV2_API_KEY_<NAME> variables)"
            );
            match scope.lookout("entity_name") {
                Some(e) => self.bad(e, message),
                None => self
                    .problems
                    .push(Problem::section(self.file, section, message)),
            }
        } else {
            names.push((suffix, section.to_string()));
        }
    }

    fn entity_name(&mut self, e: Entry<'_>) -> Option<String> {
        if is_entity_name(e.value) {
            Some(e.value.to_string())
        } else {
            self.bad(e, format!("not usable as a file name; {NAME_RULE}"));
            None
        }
    }

    fn tenant(
        &mut self,
        scope: &Scope<'_>,
        entity_name: Option<String>,
        n_tenants: usize,
        defined: &Destinations,
    ) -> Option<TenantConfig> {
        let section = scope.section_name();
        let api_domain = match scope.lookout("api_domain") {
            None => {
                self.problems.push(Problem::missing(
                    self.file,
                    section,
                    "api_domain",
                    "missing; set api_domain to the api base url, e.g. https://api.lookout.com",
                ));
                None
            }
            Some(e) => self.api_domain(e),
        };
        let api_key = self.api_key(scope, entity_name.as_deref(), n_tenants);
        let types = self.event_types(scope);
        let stream_position = self.parse(
            scope.lookout("stream_position"),
            None,
            |v| is_event_id(v).then(|| Position::new(v)),
            "not an event id; expected 0 or an event id such as 01a1aac4-759e-7c9d-bf7a-861b26a9b1a3",
        );
        let start_time = self.start_time(scope, matches!(stream_position, Some(Some(_))));
        let sse_timeout = self.sse_timeout(scope);
        let ca_file = scope.lookout("ca_file").map(|e| PathBuf::from(e.value));
        let max_event_size = self.parse(
            scope.lookout("max_event_size"),
            16_777_216,
            |v| parse_uint(v).filter(|n| (65_536..=1_073_741_824).contains(n)),
            "not a size from 65536 to 1073741824 bytes",
        );
        let syslog = self.syslog_destination(&scope.syslog_keys());
        let destinations =
            self.tenant_destinations(scope.lookout("destinations"), defined, syslog.as_ref());

        Some(TenantConfig {
            entity_name: entity_name?,
            section: section.to_string(),
            api_domain: api_domain?,
            api_key: api_key.as_ref()?.0.clone(),
            api_key_source: api_key?.1,
            types: (!types.is_empty()).then_some(types)?,
            stream_position: stream_position?,
            start_time: start_time?,
            sse_timeout: Duration::from_secs(sse_timeout?),
            ca_file,
            max_event_size: usize::try_from(max_event_size?).ok()?,
            syslog: syslog?,
            destinations: destinations?,
        })
    }

    /// The enabled event types, in query order; a problem if none is enabled (and none
    /// of the four keys was invalid).
    fn event_types(&mut self, scope: &Scope<'_>) -> Vec<EventType> {
        let mut types = Vec::new();
        let mut types_ok = true;
        for (t, key, default) in [
            (EventType::Threat, "threat_enabled", true),
            (EventType::Device, "device_enabled", true),
            (EventType::Audit, "audit_enabled", false),
            (EventType::SmishingAlert, "smishing_enabled", false),
        ] {
            match self.parse(scope.lookout(key), default, parse_bool, BOOL_MSG) {
                Some(true) => types.push(t),
                Some(false) => {}
                None => types_ok = false,
            }
        }
        if types_ok && types.is_empty() {
            self.problems.push(Problem::section(
                self.file,
                scope.section_name(),
                "threat_enabled, device_enabled, audit_enabled and smishing_enabled are all false; enable at least one event type",
            ));
        }
        types
    }

    /// `start_time`, with warnings for a missing offset, a time beyond the stream's
    /// retention, and a `stream_position` that overrides it.
    fn start_time(
        &mut self,
        scope: &Scope<'_>,
        has_stream_position: bool,
    ) -> Option<Option<DateTime<Utc>>> {
        let Some(e) = scope.lookout("start_time") else {
            return Some(None);
        };
        let Some((t, has_offset)) = parse_timestamp(e.value) else {
            self.bad(
                e,
                "not an iso-8601 time; expected e.g. 2026-11-20T00:00:00Z",
            );
            return None;
        };
        if !has_offset {
            self.warn(e, "no utc offset; taken as utc");
        }
        if self.ctx.now.signed_duration_since(t) > chrono::Duration::days(10) {
            self.warn(
                e,
                "more than 10 days in the past; the stream keeps about 10 days of events, so older ones may not be replayed (sent unchanged)",
            );
        }
        if has_stream_position {
            self.warn(
                e,
                "ignored because stream_position is set (start_time applies only when stream_position is 0)",
            );
        }
        Some(Some(t))
    }

    /// `sse_timeout` in seconds, with a warning when it is shorter than two heartbeats.
    fn sse_timeout(&mut self, scope: &Scope<'_>) -> Option<u64> {
        let sse_timeout = self.parse(
            scope.lookout("sse_timeout"),
            15,
            |v| parse_uint(v).filter(|n| (1..=3600).contains(n)),
            "not a number of seconds from 1 to 3600",
        );
        if let (Some(secs), Some(e)) = (sse_timeout, scope.lookout("sse_timeout"))
            && secs < 10
        {
            self.warn(
                e,
                "shorter than two heartbeat intervals (5 s each); a healthy stream may be re-opened",
            );
        }
        sse_timeout
    }

    fn api_domain(&mut self, e: Entry<'_>) -> Option<Url> {
        let url = match Url::parse(e.value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
            _ => {
                self.bad(
                    e,
                    "not an http or https url; expected e.g. https://api.lookout.com",
                );
                return None;
            }
        };
        if url.query().is_some() || url.fragment().is_some() {
            self.bad(
                e,
                "has a query or fragment; expected a base url such as https://api.lookout.com",
            );
            return None;
        }
        if url.scheme() == "http" {
            self.warn(
                e,
                "plain http sends the application key and tokens unencrypted; use https outside tests and simulators",
            );
        }
        let mut url = url;
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Some(url)
    }

    fn api_key(
        &mut self,
        scope: &Scope<'_>,
        entity_name: Option<&str>,
        n_tenants: usize,
    ) -> Option<(Secret, SecretSource)> {
        if self.ctx.api_keys == ApiKeys::Skip {
            return Some((Secret::new(String::new()), SecretSource::ConfigFile));
        }
        if let Some(e) = scope.lookout("api_key_file") {
            let key = self.api_key_file(e)?;
            return Some((key, SecretSource::File(PathBuf::from(e.value))));
        }
        let env = |name: &str| (self.ctx.env)(name).filter(|v| !v.is_empty());
        if let Some(name) = entity_name {
            let variable = api_key_env_var(name);
            if let Some(key) = env(&variable) {
                return Some((Secret::new(key), SecretSource::Environment(variable)));
            }
        }
        if n_tenants == 1
            && let Some(key) = env("MRAV2_API_KEY")
        {
            return Some((
                Secret::new(key),
                SecretSource::Environment("MRAV2_API_KEY".into()),
            ));
        }
        if let Some(e) = scope.lookout("api_key") {
            return Some((Secret::new(e.value), SecretSource::ConfigFile));
        }
        let variable = match (n_tenants, entity_name) {
            (1, _) => "MRAV2_API_KEY".to_string(),
            (_, Some(name)) => api_key_env_var(name),
            (_, None) => "MRAV2_API_KEY_<NAME>".to_string(),
        };
        self.problems.push(Problem::missing(
            self.file,
            scope.section_name(),
            "api_key",
            format!("missing; set api_key, api_key_file or {variable}"),
        ));
        None
    }

    /// The key in `api_key_file`, without the line end.
    fn api_key_file(&mut self, e: Entry<'_>) -> Option<Secret> {
        match small_file::read_to_string(Path::new(e.value), small_file::TEXT_LIMIT) {
            Err(err @ small_file::SmallFileError::Io(_)) => {
                self.bad(
                    e,
                    format!(
                        "cannot read it: {}; make the file readable by the connector's user",
                        file_reason(&err)
                    ),
                );
                None
            }
            Err(err) => {
                self.bad(e, format!("cannot read it: {err}"));
                None
            }
            Ok(text) => {
                let key = key_file_text(&text);
                if key.trim().is_empty() {
                    self.bad(e, "the file is empty; put the application key in it");
                    None
                } else {
                    Some(Secret::new(key))
                }
            }
        }
    }
}

/// The key in the text of an `api_key_file`: the text without its line end.
pub fn key_file_text(text: &str) -> &str {
    text.trim_end_matches(['\r', '\n'])
}

fn env_suffix(entity_name: &str) -> String {
    entity_name
        .chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}
