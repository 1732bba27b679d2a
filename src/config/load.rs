//! Raw sections → validated [`Config`]: every rule of `interface.md`'s configuration
//! reference, every problem collected before anything is reported.
//!
//! The entry points are [`load_file`] (what the binary calls), [`load_str`] and
//! [`load_str_with_env`] (tests), and [`load_with`], which takes every outside input
//! (environment, machine host name, clock, file mode) in a [`LoadContext`]. Loading
//! never touches the network; the only files it reads are the config file itself and
//! `api_key_file`.
//!
//! Rules decided here (and documented in `config.ini.example`):
//!
//! - **Tenants.** Without `[lookout:NAME]` sections, `[lookout]` is the one tenant and
//!   needs `entity_name`. With them, `[lookout]` is a tenant too only if it sets
//!   `entity_name`; otherwise it only provides defaults. A `[lookout:NAME]` section
//!   inherits every key it does not set from `[lookout]`, except `entity_name` (NAME is
//!   the default) and `stream_position` (a position belongs to one tenant's stream).
//! - **Empty values** mean "not set" (the default applies, or the inherited value),
//!   except `app_name`, where empty omits the RFC 3164 TAG.
//! - **`syslog_` overrides.** In a `[lookout…]` section, `syslog_K` sets the `[syslog]`
//!   key `K` for that tenant. The `[syslog]` key `syslog_format` is written
//!   `syslog_format` (or `syslog_syslog_format`) there. Precedence for a tenant:
//!   its own `syslog_K` > `[lookout]`'s `syslog_K` > `[syslog]` `K` > the default.
//! - **API key** precedence on the effective (inherited) values: `api_key_file` >
//!   `MRAV2_API_KEY_<NAME>` > `MRAV2_API_KEY` (only with exactly one tenant) > `api_key`.
//!   `<NAME>` is the entity name upper-cased with `.` and `-` written as `_`
//!   (`acme-eu.prod` → `MRAV2_API_KEY_ACME_EU_PROD`). So that these names never collide,
//!   entity names must be unique ignoring case and treating `.`, `-` and `_` alike.
//! - **Enumerated values** (`protocol`, `forwarder_type`, …) are case-insensitive.
//! - **`max_message_size`** is at least 480 bytes (what every RFC 5426 receiver must
//!   accept), at most 65507 for udp and 16 MiB otherwise.

use super::raw::{self, RawIni, RawSection};
use super::{
    Config, ConnectorConfig, Format, Framing, HeaderFormat, HeaderTime, Protocol, Proxy,
    ProxyConfig, Secret, SyslogConfig, TenantConfig, TlsConfig,
};
use crate::event::{EventType, Position};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::fmt;
use std::net::SocketAddr;
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
];

/// The keys of `[syslog]`.
pub const SYSLOG_KEYS: &[&str] = &[
    "host",
    "port",
    "forwarder_type",
    "protocol",
    "use_udp",
    "framing",
    "syslog_format",
    "facility",
    "app_name",
    "header_time",
    "hostname",
    "log_identifier_key",
    "log_identifier",
    "max_message_size",
    "leef_delimiter",
    "splunk_format",
    "ca_file",
    "cert_file",
    "key_file",
    "tls_verify",
    "tls_server_name",
];

/// The keys of `[proxy]`.
pub const PROXY_KEYS: &[&str] = &["address", "username", "password", "no_proxy"];

/// The keys of `[connector]`.
pub const CONNECTOR_KEYS: &[&str] = &["state_dir", "metrics_listen", "commit_interval_ms"];

/// Smallest accepted `max_message_size`: the size every RFC 5426 receiver must accept.
pub const MIN_MESSAGE_SIZE: usize = 480;
/// Largest accepted `max_message_size` for udp: the largest IPv4 UDP payload.
pub const MAX_UDP_MESSAGE_SIZE: usize = 65507;
/// Largest accepted `max_message_size` for tcp, tls and stdout.
pub const MAX_STREAM_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// The `log_identifier_key` value that makes `log_identifier` the record HOSTNAME.
pub const QRADAR_IDENTIFIER_KEY: &str = "qradarLogSourceIdentifier";

/// One configuration problem, rendered as
/// `FILE: [section] key = "value": what is wrong; what is accepted`.
///
/// Parts that do not apply are left out (`FILE: [section] key: missing; …`,
/// `FILE: [section]: …`, `FILE: …`). A secret value is stored (and shown) as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The configuration file.
    pub file: PathBuf,
    /// The section, without brackets.
    pub section: Option<String>,
    /// The key.
    pub key: Option<String>,
    /// The value as written, or `***` for a secret.
    pub value: Option<String>,
    /// `what is wrong; what is accepted`, lowercase, no trailing period.
    pub message: String,
}

/// Every problem found in a configuration file. Its `Display` prints one problem per
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// Everything outside the file that loading depends on, so tests can pin it.
pub struct LoadContext<'a> {
    /// Reads an environment variable (`MRAV2_API_KEY…`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The machine's host name as the OS reports it (sanitised by the loader).
    pub machine_hostname: String,
    /// Now, for the `start_time` retention warning.
    pub now: DateTime<Utc>,
    /// Unix mode bits of the config file, for the permission warning (`None`: unknown).
    pub file_mode: Option<u32>,
    /// Whether the API keys are read and checked.
    pub api_keys: ApiKeys,
}

/// Whether a load reads the tenants' API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeys {
    /// Read and check them (`run`, `check-config`): a missing or unreadable key is a
    /// problem.
    Read,
    /// Neither read nor check them, and leave every tenant's key empty (`status`,
    /// which only reads state files). Under systemd `api_key_file` names a credential
    /// that only the service can read, and `status` is run from a shell.
    Skip,
}

impl LoadContext<'static> {
    /// The real process: its environment, host name and clock; file mode unknown.
    pub fn process() -> Self {
        Self {
            env: &process_env,
            machine_hostname: machine_hostname(),
            now: Utc::now(),
            file_mode: None,
            api_keys: ApiKeys::Read,
        }
    }
}

/// Loads and validates a file: reads it, notes its mode, then [`load_with`] in the real
/// process context, reading the API keys or not as `api_keys` says.
pub fn load_file(path: &Path, api_keys: ApiKeys) -> Result<Config, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(ConfigError {
                problems: vec![Problem::file(
                    path,
                    format!(
                        "cannot read the file: {}; check the path given to --config",
                        io_reason(&e)
                    ),
                )],
            });
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Err(ConfigError {
                problems: vec![Problem::file(
                    path,
                    format!(
                        "not valid utf-8 at byte {}; save the file as utf-8",
                        e.utf8_error().valid_up_to()
                    ),
                )],
            });
        }
    };
    let ctx = LoadContext {
        file_mode: file_mode(path),
        api_keys,
        ..LoadContext::process()
    };
    load_with(path, &text, &ctx)
}

/// Loads and validates text as if read from `path`, in the real process context.
pub fn load_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    load_with(path, text, &LoadContext::process())
}

/// Like [`load_str`], with the environment read through `env` instead of the process.
pub fn load_str_with_env(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let ctx = LoadContext {
        env,
        ..LoadContext::process()
    };
    load_with(path, text, &ctx)
}

/// Loads and validates text as if read from `path`, everything outside the file taken
/// from `ctx`. Returns every problem, or the validated configuration with its warnings.
/// Never panics, whatever the text.
pub fn load_with(path: &Path, text: &str, ctx: &LoadContext<'_>) -> Result<Config, ConfigError> {
    let mut check = Check {
        file: path,
        ctx,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let raw = raw::parse(path, text, &mut check.problems);
    let config = check.config(&raw);
    let Check {
        mut problems,
        warnings,
        ..
    } = check;
    dedup(&mut problems);
    match config {
        Some(mut config) if problems.is_empty() => {
            let mut seen = Vec::new();
            for w in warnings {
                if !seen.contains(&w) {
                    seen.push(w);
                }
            }
            config.warnings = seen;
            Ok(config)
        }
        _ => Err(ConfigError { problems }),
    }
}

/// A machine host name made usable as a syslog HOSTNAME: every character outside
/// printable ASCII (33–126) becomes `-`, at most 255 characters, `localhost` if empty.
pub fn sanitize_hostname(raw: &str) -> String {
    let name: String = raw
        .chars()
        .take(255)
        .map(|c| if ('!'..='~').contains(&c) { c } else { '-' })
        .collect();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// The environment variable that holds the API key of `entity_name`:
/// `MRAV2_API_KEY_` + the name upper-cased with `.` and `-` written as `_`.
pub fn api_key_env_var(entity_name: &str) -> String {
    format!("MRAV2_API_KEY_{}", env_suffix(entity_name))
}

/// Parses an ISO-8601 / RFC 3339 instant as `start_time` accepts it: a date, optionally
/// a time (`T` or space, optional fraction), optionally an offset (`Z`, `±hh:mm`,
/// `±hhmm`, `±hh`). Returns the instant in UTC and whether an offset was given (without
/// one the time is taken as UTC).
pub fn parse_timestamp(text: &str) -> Option<(DateTime<Utc>, bool)> {
    let text = text.trim();
    if !text.is_ascii() || text.len() < 10 {
        return None;
    }
    let (local, offset_secs) = split_offset(text)?;
    let naive = parse_naive(local)?;
    let utc = naive.checked_sub_signed(chrono::Duration::seconds(offset_secs.unwrap_or(0)))?;
    Some((Utc.from_utc_datetime(&utc), offset_secs.is_some()))
}

impl Problem {
    /// A problem with the file as a whole.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            section: None,
            key: None,
            value: None,
            message: message.into(),
        }
    }

    /// A problem with a whole section.
    pub fn section(file: &Path, section: &str, message: impl Into<String>) -> Self {
        Self {
            section: Some(section.to_string()),
            ..Self::file(file, message)
        }
    }

    /// A key that is needed and not set.
    pub fn missing(file: &Path, section: &str, key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_string()),
            ..Self::section(file, section, message)
        }
    }

    /// A value that is wrong. Secrets (judged by the key name) are stored as `***`, and
    /// a password inside a URL is masked.
    pub fn value(
        file: &Path,
        section: &str,
        key: &str,
        value: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            value: Some(shown_value(key, value)),
            ..Self::missing(file, section, key, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        let mut place = String::new();
        if let Some(section) = &self.section {
            place.push_str(&format!("[{}]", printable(section)));
        }
        if let Some(key) = &self.key {
            if !place.is_empty() {
                place.push(' ');
            }
            place.push_str(&printable(key));
        }
        if let Some(value) = &self.value {
            place.push_str(&format!(" = \"{}\"", printable(value)));
        }
        if !place.is_empty() {
            write!(f, ": {place}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------
// Validation.

const BOOL_MSG: &str = "not a boolean; expected true, false, yes, no, on, off, 1 or 0";
const NAME_RULE: &str = "use letters, digits, '.', '_' and '-'";
const HOSTNAME_RULE: &str = "expected 1 to 255 printable ascii characters without spaces";

/// Where a value came from: for messages, and so a problem in a shared section is
/// reported once however many tenants use it.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    section: &'a str,
    key: &'a str,
    value: &'a str,
}

/// The sections one tenant reads its values from.
struct Scope<'a> {
    /// The tenant's own section (`None` only when there is no tenant at all).
    own: Option<&'a RawSection>,
    /// `[lookout]`, when it is not `own`.
    defaults: Option<&'a RawSection>,
    /// `[syslog]`.
    syslog: Option<&'a RawSection>,
}

struct Check<'a, 'c> {
    file: &'a Path,
    ctx: &'a LoadContext<'c>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl<'a> Scope<'a> {
    fn section_name(&self) -> &'a str {
        self.own.map_or("lookout", |s| s.name.as_str())
    }

    /// A `[lookout]` key of this tenant: its own value, else the inherited one.
    fn lookout(&self, key: &str) -> Option<Entry<'a>> {
        let inheritable = !matches!(key, "entity_name" | "stream_position");
        entry(self.own, key, false).or_else(|| {
            if inheritable {
                entry(self.defaults, key, false)
            } else {
                None
            }
        })
    }

    /// A `[syslog]` key for this tenant, after `syslog_` overrides.
    fn syslog(&self, key: &str) -> Option<Entry<'a>> {
        let keep_empty = key == "app_name";
        let prefixed = format!("syslog_{key}");
        let mut names = vec![prefixed.as_str()];
        if key == "syslog_format" {
            names = vec!["syslog_format", "syslog_syslog_format"];
        }
        for section in [self.own, self.defaults] {
            for name in &names {
                if let Some(e) = entry(section, name, keep_empty) {
                    return Some(e);
                }
            }
        }
        entry(self.syslog, key, keep_empty)
    }
}

fn entry<'a>(section: Option<&'a RawSection>, key: &str, keep_empty: bool) -> Option<Entry<'a>> {
    let section = section?;
    let (key, value) = section.entries.iter().find(|(k, _)| k == key)?;
    if value.is_empty() && !keep_empty {
        return None;
    }
    Some(Entry {
        section: &section.name,
        key,
        value,
    })
}

impl Check<'_, '_> {
    fn bad(&mut self, e: Entry<'_>, message: impl Into<String>) {
        self.problems.push(Problem::value(
            self.file, e.section, e.key, e.value, message,
        ));
    }

    fn warn(&mut self, e: Entry<'_>, message: impl Into<String>) {
        let w = Problem::value(self.file, e.section, e.key, e.value, message);
        self.warnings.push(w.to_string());
    }

    /// Parses an optional value: `Some(default)` when unset, `None` (and a problem) when
    /// set to something `parse` rejects.
    fn parse<T>(
        &mut self,
        e: Option<Entry<'_>>,
        default: T,
        parse: impl FnOnce(&str) -> Option<T>,
        message: &str,
    ) -> Option<T> {
        match e {
            None => Some(default),
            Some(e) => {
                let parsed = parse(e.value);
                if parsed.is_none() {
                    self.bad(e, message);
                }
                parsed
            }
        }
    }

    fn config(&mut self, raw: &RawIni) -> Option<Config> {
        self.known_sections_and_keys(raw);

        let lookout = raw.section("lookout");
        let named: Vec<&RawSection> = raw
            .sections
            .iter()
            .filter(|s| s.name.starts_with("lookout:"))
            .collect();
        let syslog = raw.section("syslog");

        // Which sections are tenants, and under what name.
        let mut tenants: Vec<(Scope<'_>, Option<Entry<'_>>)> = Vec::new();
        if named.is_empty() {
            if let Some(section) = lookout {
                let own = Scope {
                    own: Some(section),
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
                    own: Some(section),
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
                    own: Some(section),
                    defaults: lookout,
                    syslog,
                };
                tenants.push((scope, None));
            }
        }

        // Entity names: valid and unique.
        let n_tenants = tenants.len();
        let mut names: Vec<(String, String)> = Vec::new(); // (env suffix, section)
        let mut built = Vec::new();
        let mut all_ok = true;
        for (scope, name_entry) in &tenants {
            let section = scope.section_name();
            let name = match name_entry {
                Some(e) => self.entity_name(*e),
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
            };
            if let Some(name) = &name {
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
            let tenant = self.tenant(scope, name, n_tenants);
            all_ok &= tenant.is_some();
            built.extend(tenant);
        }
        if tenants.is_empty() {
            // Still check the destination, so every problem is reported at once.
            let scope = Scope {
                own: None,
                defaults: None,
                syslog,
            };
            self.syslog(&scope);
        }

        if n_tenants > 1 && (self.ctx.env)("MRAV2_API_KEY").is_some_and(|v| !v.is_empty()) {
            self.warnings.push(
                Problem::file(
                    self.file,
                    "MRAV2_API_KEY is ignored because there is more than one tenant; use MRAV2_API_KEY_<NAME> per tenant",
                )
                .to_string(),
            );
        }
        self.permission_warning(raw);

        let proxy = self.proxy(raw.section("proxy"));
        let connector = self.connector(raw.section("connector"));
        if !all_ok || tenants.is_empty() {
            return None;
        }
        Some(Config {
            path: self.file.to_path_buf(),
            tenants: built,
            proxy: proxy?,
            connector: connector?,
            warnings: Vec::new(),
        })
    }

    fn known_sections_and_keys(&mut self, raw: &RawIni) {
        for section in &raw.sections {
            let name = section.name.as_str();
            let is_tenant = name == "lookout" || name.starts_with("lookout:");
            let accepted: &[&str] = match name {
                "syslog" => SYSLOG_KEYS,
                "proxy" => PROXY_KEYS,
                "connector" => CONNECTOR_KEYS,
                _ if is_tenant => LOOKOUT_KEYS,
                _ => {
                    self.problems.push(Problem::section(
                        self.file,
                        name,
                        "unknown section; expected [lookout], [lookout:NAME], [syslog], [proxy] or [connector]",
                    ));
                    continue;
                }
            };
            for (key, value) in &section.entries {
                let known = accepted.contains(&key.as_str())
                    || (is_tenant
                        && (key == "syslog_format"
                            || key
                                .strip_prefix("syslog_")
                                .is_some_and(|k| SYSLOG_KEYS.contains(&k))));
                if !known {
                    let mut message =
                        format!("unknown key; accepted keys are {}", accepted.join(", "));
                    if is_tenant {
                        message.push_str(
                            " and the [syslog] keys prefixed with syslog_ (e.g. syslog_host)",
                        );
                    }
                    self.problems
                        .push(Problem::value(self.file, name, key, value, message));
                }
            }
            if is_tenant
                && section.get("syslog_format").is_some()
                && section.get("syslog_syslog_format").is_some()
            {
                self.problems.push(Problem::missing(
                    self.file,
                    name,
                    "syslog_syslog_format",
                    "set together with syslog_format, which means the same; keep one",
                ));
            }
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
                section,
                "threat_enabled, device_enabled, audit_enabled and smishing_enabled are all false; enable at least one event type",
            ));
        }

        let stream_position = self.parse(
            scope.lookout("stream_position"),
            None,
            |v| is_event_id(v).then(|| Position::new(v)),
            "not an event id; expected 0 or an event id such as 01a1aac4-759e-7c9d-bf7a-861b26a9b1a3",
        );
        let start_time = match scope.lookout("start_time") {
            None => Some(None),
            Some(e) => match parse_timestamp(e.value) {
                None => {
                    self.bad(
                        e,
                        "not an iso-8601 time; expected e.g. 2026-11-20T00:00:00Z",
                    );
                    None
                }
                Some((t, has_offset)) => {
                    if !has_offset {
                        self.warn(e, "no utc offset; taken as utc");
                    }
                    if self.ctx.now.signed_duration_since(t) > chrono::Duration::days(10) {
                        self.warn(
                            e,
                            "more than 10 days in the past; the stream keeps about 10 days of events, so older ones may not be replayed (sent unchanged)",
                        );
                    }
                    if matches!(stream_position, Some(Some(_))) {
                        self.warn(
                            e,
                            "ignored because stream_position is set (start_time applies only when stream_position is 0)",
                        );
                    }
                    Some(Some(t))
                }
            },
        };

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
        let ca_file = scope.lookout("ca_file").map(|e| PathBuf::from(e.value));
        let max_event_size = self.parse(
            scope.lookout("max_event_size"),
            16_777_216,
            |v| parse_uint(v).filter(|n| (65_536..=1_073_741_824).contains(n)),
            "not a size from 65536 to 1073741824 bytes",
        );

        let syslog = self.syslog(scope);

        Some(TenantConfig {
            entity_name: entity_name?,
            section: section.to_string(),
            api_domain: api_domain?,
            api_key: api_key?,
            types: (!types.is_empty()).then_some(types)?,
            stream_position: stream_position?,
            start_time: start_time?,
            sse_timeout: Duration::from_secs(sse_timeout?),
            ca_file,
            max_event_size: usize::try_from(max_event_size?).ok()?,
            syslog: syslog?,
        })
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
    ) -> Option<Secret> {
        if self.ctx.api_keys == ApiKeys::Skip {
            return Some(Secret::new(String::new()));
        }
        let section = scope.section_name();
        if let Some(e) = scope.lookout("api_key_file") {
            return match std::fs::read_to_string(e.value) {
                Err(err) => {
                    self.bad(
                        e,
                        format!(
                            "cannot read it: {}; make the file readable by the connector's user",
                            io_reason(&err)
                        ),
                    );
                    None
                }
                Ok(text) => {
                    let key = text.trim_end_matches(['\r', '\n']);
                    if key.trim().is_empty() {
                        self.bad(e, "the file is empty; put the application key in it");
                        None
                    } else {
                        Some(Secret::new(key))
                    }
                }
            };
        }
        let env = |name: &str| (self.ctx.env)(name).filter(|v| !v.is_empty());
        if let Some(name) = entity_name
            && let Some(key) = env(&api_key_env_var(name))
        {
            return Some(Secret::new(key));
        }
        if n_tenants == 1
            && let Some(key) = env("MRAV2_API_KEY")
        {
            return Some(Secret::new(key));
        }
        if let Some(e) = scope.lookout("api_key") {
            return Some(Secret::new(e.value));
        }
        let variable = match (n_tenants, entity_name) {
            (1, _) => "MRAV2_API_KEY".to_string(),
            (_, Some(name)) => api_key_env_var(name),
            (_, None) => "MRAV2_API_KEY_<NAME>".to_string(),
        };
        self.problems.push(Problem::missing(
            self.file,
            section,
            "api_key",
            format!("missing; set api_key, api_key_file or {variable}"),
        ));
        None
    }

    fn permission_warning(&mut self, raw: &RawIni) {
        let Some(mode) = self.ctx.file_mode else {
            return;
        };
        let holds_key = raw.sections.iter().any(|s| {
            (s.name == "lookout" || s.name.starts_with("lookout:"))
                && s.get("api_key").is_some_and(|v| !v.is_empty())
        });
        if holds_key && mode & 0o044 != 0 {
            let file = self.file.display();
            self.warnings.push(
                Problem::file(
                    self.file,
                    format!(
                        "holds an api_key and is readable by group or others (mode {:o}); run chmod 600 {file}, or move the key to api_key_file",
                        mode & 0o777
                    ),
                )
                .to_string(),
            );
        }
    }

    fn syslog(&mut self, scope: &Scope<'_>) -> Option<SyslogConfig> {
        let protocol_entry = scope.syslog("protocol");
        let protocol = self.parse(
            protocol_entry,
            Protocol::Tcp,
            |v| match v.to_ascii_lowercase().as_str() {
                "udp" => Some(Protocol::Udp),
                "tcp" => Some(Protocol::Tcp),
                "tls" => Some(Protocol::Tls),
                "stdout" => Some(Protocol::Stdout),
                _ => None,
            },
            "unknown protocol; expected udp, tcp, tls or stdout",
        );
        let use_udp_entry = scope.syslog("use_udp");
        let use_udp = self.parse(use_udp_entry, None, |v| parse_bool(v).map(Some), BOOL_MSG);
        let protocol = match (protocol, use_udp, protocol_entry, use_udp_entry) {
            (Some(p), Some(Some(udp)), Some(pe), Some(ue)) => {
                if udp != (p == Protocol::Udp) {
                    self.bad(
                        ue,
                        format!(
                            "conflicts with protocol = \"{}\"; remove use_udp (protocol replaces it)",
                            pe.value
                        ),
                    );
                    None
                } else {
                    Some(p)
                }
            }
            (Some(_), Some(Some(true)), None, _) => Some(Protocol::Udp),
            (p, _, _, _) => p,
        };
        let stream_default = match protocol {
            Some(Protocol::Tls) => (6514, Framing::OctetCounting),
            _ => (514, Framing::Lf),
        };

        let host_entry = scope.syslog("host");
        let host = self.parse(
            host_entry,
            "localhost".to_string(),
            |v| is_host(v).then(|| v.to_string()),
            "not a host name or address; expected e.g. siem.example.com, 10.0.0.5 or ::1",
        );
        let port = self.parse(
            scope.syslog("port"),
            stream_default.0,
            |v| {
                parse_uint(v)
                    .filter(|n| (1..=65535).contains(n))
                    .and_then(|n| u16::try_from(n).ok())
            },
            "not a port; expected a number from 1 to 65535",
        );
        let framing = self.parse(
            scope.syslog("framing"),
            stream_default.1,
            |v| match v.to_ascii_lowercase().as_str() {
                "lf" => Some(Framing::Lf),
                "octet-counting" => Some(Framing::OctetCounting),
                _ => None,
            },
            "unknown framing; expected lf or octet-counting",
        );

        let delimiter = self.parse(
            scope.syslog("leef_delimiter"),
            '\t',
            parse_leef_delimiter,
            "not a valid leef delimiter; expected tab (the default), one ascii punctuation character other than = and \\, or its code as 0xHH",
        );
        let splunk_kv = self.parse(
            scope.syslog("splunk_format"),
            false,
            |v| match v.to_ascii_lowercase().as_str() {
                "json" => Some(false),
                "kv" => Some(true),
                _ => None,
            },
            "unknown splunk format; expected json or kv",
        );
        let forwarder = self.parse(
            scope.syslog("forwarder_type"),
            "qradar",
            |v| {
                ["qradar", "splunk", "cef", "ocsf"]
                    .into_iter()
                    .find(|known| v.eq_ignore_ascii_case(known))
            },
            "unknown forwarder type; expected qradar, splunk, cef or ocsf",
        );
        // No `?` before the end of this function: every key is checked even after a
        // problem, so all problems are reported at once.
        let format = match (forwarder, splunk_kv, delimiter) {
            (Some("splunk"), Some(true), _) => Some(Format::SplunkKv),
            (Some("splunk"), Some(false), _) => Some(Format::SplunkJson),
            (Some("qradar"), _, Some(delimiter)) => Some(Format::Leef { delimiter }),
            (Some("cef"), _, _) => Some(Format::Cef),
            (Some("ocsf"), _, _) => Some(Format::Ocsf),
            _ => None,
        };

        let header = self.parse(
            scope.syslog("syslog_format"),
            HeaderFormat::Rfc3164,
            |v| match v.to_ascii_lowercase().as_str() {
                "rfc3164" => Some(HeaderFormat::Rfc3164),
                "rfc5424" => Some(HeaderFormat::Rfc5424),
                _ => None,
            },
            "unknown syslog format; expected rfc3164 or rfc5424",
        );
        let facility = self.parse(
            scope.syslog("facility"),
            1,
            parse_facility,
            "unknown facility; expected a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, local0 to local7) or a number from 0 to 23",
        );
        let app_name = self.parse(
            scope.syslog("app_name"),
            "lookout-mra".to_string(),
            |v| is_app_name(v).then(|| v.to_string()),
            "not a valid app name; expected 1 to 32 of A-Z a-z 0-9 . _ - (or empty to omit the tag)",
        );
        let header_time = self.parse(
            scope.syslog("header_time"),
            HeaderTime::Event,
            |v| match v.to_ascii_lowercase().as_str() {
                "event" => Some(HeaderTime::Event),
                "sent" => Some(HeaderTime::Sent),
                _ => None,
            },
            "unknown header time; expected event or sent",
        );

        // HOSTNAME: `hostname` > QRadar log source identifier > the machine's name.
        let hostname_key = self.parse(
            scope.syslog("hostname"),
            None,
            |v| is_hostname(v).then(|| Some(v.to_string())),
            &format!("not a valid hostname; {HOSTNAME_RULE}"),
        );
        let identifier_key = scope.syslog("log_identifier_key");
        let identifier = scope.syslog("log_identifier");
        let mut qradar_identifier = Some(None);
        let mut custom_identifier = Some(None);
        match identifier_key {
            Some(k) if k.value.eq_ignore_ascii_case(QRADAR_IDENTIFIER_KEY) => {
                if let Some(i) = identifier {
                    if is_hostname(i.value) {
                        qradar_identifier = Some(Some(i.value.to_string()));
                    } else {
                        self.bad(
                            i,
                            format!(
                                "not a valid hostname (with log_identifier_key = {QRADAR_IDENTIFIER_KEY} it becomes the record's HOSTNAME); {HOSTNAME_RULE}"
                            ),
                        );
                        qradar_identifier = None;
                    }
                }
            }
            Some(k) => {
                if is_attribute_key(k.value) {
                    let value = identifier.map_or("", |i| i.value);
                    custom_identifier = Some(Some((k.value.to_string(), value.to_string())));
                } else {
                    self.bad(
                        k,
                        format!(
                            "not a valid attribute key; expected {QRADAR_IDENTIFIER_KEY} or letters, digits and _"
                        ),
                    );
                    custom_identifier = None;
                }
            }
            None => {
                if let Some(i) = identifier {
                    self.warn(i, "ignored because log_identifier_key is empty");
                }
            }
        }
        let hostname = match (hostname_key, qradar_identifier) {
            (Some(Some(h)), _) | (Some(None), Some(Some(h))) => Some(h),
            (Some(None), Some(None)) => Some(sanitize_hostname(&self.ctx.machine_hostname)),
            _ => None,
        };

        let max_message_size = match protocol {
            Some(Protocol::Udp) => self.parse(
                scope.syslog("max_message_size"),
                1024,
                |v| parse_size(v, MIN_MESSAGE_SIZE, MAX_UDP_MESSAGE_SIZE),
                &format!(
                    "not a record size for udp; expected a number of bytes from {MIN_MESSAGE_SIZE} to {MAX_UDP_MESSAGE_SIZE}"
                ),
            ),
            _ => self.parse(
                scope.syslog("max_message_size"),
                65536,
                |v| parse_size(v, MIN_MESSAGE_SIZE, MAX_STREAM_MESSAGE_SIZE),
                &format!(
                    "not a record size; expected a number of bytes from {MIN_MESSAGE_SIZE} to {MAX_STREAM_MESSAGE_SIZE}"
                ),
            ),
        };

        let tls = self.tls(scope, protocol, host_entry, host.as_deref());
        self.ignored_keys(scope, protocol, forwarder);

        Some(SyslogConfig {
            host: host?,
            port: port?,
            protocol: protocol?,
            framing: framing?,
            format: format?,
            header: header?,
            facility: facility?,
            app_name: app_name?,
            header_time: header_time?,
            hostname: hostname?,
            custom_identifier: custom_identifier?,
            max_message_size: max_message_size?,
            tls: tls?,
        })
    }

    /// Warns about keys that are valid but do nothing with this protocol or format.
    fn ignored_keys(
        &mut self,
        scope: &Scope<'_>,
        protocol: Option<Protocol>,
        forwarder: Option<&str>,
    ) {
        if let Some(p @ (Protocol::Udp | Protocol::Stdout)) = protocol
            && let Some(e) = scope.syslog("framing")
        {
            let name = if p == Protocol::Udp { "udp" } else { "stdout" };
            self.warn(
                e,
                format!("ignored with protocol {name} (framing applies to tcp and tls)"),
            );
        }
        if protocol.is_some_and(|p| p != Protocol::Tls) {
            for key in [
                "ca_file",
                "cert_file",
                "key_file",
                "tls_verify",
                "tls_server_name",
            ] {
                if let Some(e) = scope.syslog(key) {
                    self.warn(e, "ignored because protocol is not tls");
                }
            }
        }
        // Each format-specific key is ignored, with a warning, by the other formats.
        for (key, used_by) in [("leef_delimiter", "qradar"), ("splunk_format", "splunk")] {
            if let Some(forwarder) = forwarder.filter(|f| *f != used_by)
                && let Some(e) = scope.syslog(key)
            {
                self.warn(e, format!("ignored because forwarder_type is {forwarder}"));
            }
        }
    }

    fn tls(
        &mut self,
        scope: &Scope<'_>,
        protocol: Option<Protocol>,
        host_entry: Option<Entry<'_>>,
        host: Option<&str>,
    ) -> Option<TlsConfig> {
        let ca_file = scope.syslog("ca_file").map(|e| PathBuf::from(e.value));
        let cert = scope.syslog("cert_file");
        let key = scope.syslog("key_file");
        let client_auth = match (cert, key) {
            (Some(c), Some(k)) => Some(Some((PathBuf::from(c.value), PathBuf::from(k.value)))),
            (None, None) => Some(None),
            (Some(c), None) => {
                self.bad(
                    c,
                    "set without key_file; set both cert_file and key_file for mutual tls, or neither",
                );
                None
            }
            (None, Some(k)) => {
                self.bad(
                    k,
                    "set without cert_file; set both cert_file and key_file for mutual tls, or neither",
                );
                None
            }
        };
        let verify_entry = scope.syslog("tls_verify");
        let verify = self.parse(verify_entry, true, parse_bool, BOOL_MSG);
        if let (Some(false), Some(e), Some(Protocol::Tls)) = (verify, verify_entry, protocol) {
            self.warn(
                e,
                "certificate and host name checks are off; anyone on the network path can read and alter the records",
            );
        }
        let server_name = match scope.syslog("tls_server_name") {
            Some(e) => {
                if is_server_name(e.value) {
                    Some(e.value.to_string())
                } else {
                    self.bad(
                        e,
                        "not a valid tls server name; expected a dns name or ip address",
                    );
                    None
                }
            }
            None => {
                let host = host?.to_string();
                if protocol == Some(Protocol::Tls) && !is_server_name(&host) {
                    if let Some(e) = host_entry {
                        self.bad(e, "not usable as a tls server name; set tls_server_name");
                    }
                    None
                } else {
                    Some(host)
                }
            }
        };
        Some(TlsConfig {
            ca_file,
            client_auth: client_auth?,
            verify: verify?,
            server_name: server_name?,
        })
    }

    fn proxy(&mut self, section: Option<&RawSection>) -> Option<ProxyConfig> {
        let address = entry(section, "address", false);
        let username = entry(section, "username", false);
        let password = entry(section, "password", false);
        let no_proxy: Vec<String> = entry(section, "no_proxy", false)
            .map(|e| {
                e.value
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let Some(address) = address else {
            let mut ok = true;
            for e in [username, password].into_iter().flatten() {
                self.bad(e, "set but address is empty; set address or remove it");
                ok = false;
            }
            return ok.then_some(ProxyConfig::FromEnvironment);
        };
        let mut url = match Url::parse(address.value) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h")
                    && url.has_host() =>
            {
                url
            }
            _ => {
                self.bad(
                    address,
                    "not a proxy url; expected http://host:port, https://host:port or socks5://host:port",
                );
                return None;
            }
        };
        let url_user = percent_decode(url.username());
        let url_password = url.password().map(percent_decode);
        let mut ok = true;
        if !url_user.is_empty() || url_password.is_some() {
            for e in [username, password].into_iter().flatten() {
                self.bad(
                    e,
                    "the address already holds credentials; give them in the address or in username and password, not both",
                );
                ok = false;
            }
        }
        if let (Some(p), None) = (password, username)
            && url_user.is_empty()
        {
            self.bad(p, "set without username; set both or neither");
            ok = false;
        }
        // Credentials travel separately from the address, so the address can be logged.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let (user, pass) = if url_user.is_empty() {
            (
                username.map(|e| e.value.to_string()),
                password.map(|e| Secret::new(e.value)),
            )
        } else {
            (Some(url_user), url_password.map(Secret::new))
        };
        ok.then_some(ProxyConfig::Explicit(Proxy {
            address: url,
            username: user,
            password: pass,
            no_proxy,
        }))
    }

    fn connector(&mut self, section: Option<&RawSection>) -> Option<ConnectorConfig> {
        let state_dir = entry(section, "state_dir", false).map(|e| PathBuf::from(e.value));
        let metrics_listen = self.parse(
            entry(section, "metrics_listen", false),
            None,
            |v| v.parse::<SocketAddr>().ok().map(Some),
            "not an address and port; expected e.g. 127.0.0.1:9100 or [::1]:9100",
        );
        let commit_interval = self.parse(
            entry(section, "commit_interval_ms", false),
            1000,
            |v| parse_uint(v).filter(|n| (1..=3_600_000).contains(n)),
            "not a number of milliseconds from 1 to 3600000",
        );
        Some(ConnectorConfig {
            state_dir,
            metrics_listen: metrics_listen?,
            commit_interval: Duration::from_millis(commit_interval?),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Value rules (pure).

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn machine_hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.mode())
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Option<u32> {
    None
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => e.to_string().to_lowercase(),
    }
}

fn dedup(problems: &mut Vec<Problem>) {
    let mut seen: Vec<Problem> = Vec::with_capacity(problems.len());
    for p in problems.drain(..) {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    *problems = seen;
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

/// Whether a key name looks like it holds a secret (so its value is never shown).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_file") || key.ends_with("log_identifier_key") {
        return false;
    }
    ["key", "pass", "secret", "token", "cred"]
        .iter()
        .any(|w| key.contains(w))
}

fn shown_value(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        return "***".to_string();
    }
    mask_url_password(value)
}

/// `scheme://user:secret@host` → `scheme://user:***@host`; anything else unchanged.
fn mask_url_password(value: &str) -> String {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return value.to_string();
    };
    let rest = &value[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return value.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return value.to_string();
    };
    format!(
        "{}{}:***{}",
        &value[..start],
        &authority[..colon],
        &value[start + at..]
    )
}

/// Control characters shown as escapes, so every problem stays on one line.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Decimal digits only (no sign, no spaces), as `u64`.
fn parse_uint(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn parse_size(v: &str, min: usize, max: usize) -> Option<usize> {
    parse_uint(v)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
}

fn parse_facility(v: &str) -> Option<u8> {
    const NAMES: [(&str, u8); 21] = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("ntp", 12),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];
    let lower = v.to_ascii_lowercase();
    if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == lower) {
        return Some(*n);
    }
    parse_uint(v)
        .filter(|n| *n <= 23)
        .and_then(|n| u8::try_from(n).ok())
}

/// `leef-mapping.md` §2: TAB, or ASCII punctuation other than `=` and `\`; written as
/// the character, `0xHH` / `xHH`, or (for TAB) `\t` or `tab`.
fn parse_leef_delimiter(v: &str) -> Option<char> {
    let hex = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .or_else(|| v.strip_prefix('x'))
        .or_else(|| v.strip_prefix('X'))
        .filter(|h| h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let c = if let Some(hex) = hex {
        char::from(u8::from_str_radix(hex, 16).ok()?)
    } else if v == "\\t" || v.eq_ignore_ascii_case("tab") {
        '\t'
    } else {
        let mut chars = v.chars();
        let c = chars.next()?;
        if chars.next().is_some() {
            return None;
        }
        c
    };
    (c == '\t' || (c.is_ascii_punctuation() && c != '=' && c != '\\')).then_some(c)
}

fn is_entity_name(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_event_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 256 && v.chars().all(|c| c.is_ascii_graphic())
}

fn is_host(v: &str) -> bool {
    !v.is_empty() && v.len() <= 255 && v.chars().all(|c| c.is_ascii_graphic())
}

fn is_hostname(v: &str) -> bool {
    !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| (33..=126).contains(&b))
}

fn is_app_name(v: &str) -> bool {
    v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_attribute_key(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_server_name(v: &str) -> bool {
    rustls::pki_types::ServerName::try_from(v.to_string()).is_ok()
}

/// Splits a trailing UTC offset off an ASCII timestamp: `(rest, seconds east)`.
fn split_offset(text: &str) -> Option<(&str, Option<i64>)> {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return Some((rest, Some(0)));
    }
    // A sign after the date (position 10 on) starts an offset.
    let Some(pos) = text
        .char_indices()
        .skip(10)
        .find(|(_, c)| matches!(c, '+' | '-'))
        .map(|(i, _)| i)
    else {
        return Some((text, None));
    };
    let (rest, offset) = text.split_at(pos);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || offset[1..].matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some((rest, Some(sign * (h * 3600 + m * 60))))
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    if text.len() == 10 {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN));
    }
    let sep = text.as_bytes().get(10).copied();
    if !matches!(sep, Some(b'T' | b't' | b' ')) {
        return None;
    }
    let normalised = format!("{}T{}", &text[..10], &text[11..]);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&normalised, f).ok())
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
