//! Raw sections → validated [`Config`]: every rule of `docs/configuration.md`, every
//! problem collected before anything is reported.
//!
//! The entry points are [`load_file`] (what the binary calls), [`load_str`] and
//! [`load_str_with_env`] (tests), and [`load_with`], which takes every outside input
//! (environment, machine host name, clock, file mode) in a [`LoadContext`]. Loading
//! never touches the network; the only files it reads are the config file itself and
//! `api_key_file`.
//!
//! This module owns the order of the work: the INI syntax step (`config::raw`), unknown
//! sections and keys, then one loader per section, each an `impl` block of the private
//! `Check` (which collects problems and warnings) in a child module of its own:
//! `lookout` (the tenants), `syslog` (a syslog destination), `destination`
//! (`[destination:NAME]` and which destinations a tenant uses), `proxy` and `connector`.
//! How a single value is read (booleans, sizes, facilities, timestamps…) is in `value`.
//!
//! Rules decided here and in those modules (and documented in `config.ini.example`):
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
//! - **`relp_window`** (relp and relp-tls) is 1 to [`MAX_RELP_WINDOW`] records.
//! - **`max_message_size`** is at least 480 bytes (what every RFC 5426 receiver must
//!   accept), at most 65507 for udp and 16 MiB otherwise.

mod connector;
mod destination;
mod lookout;
mod proxy;
mod syslog;
mod value;

pub use super::problem::{ConfigError, Problem};
pub use connector::CONNECTOR_KEYS;
pub use destination::{DESTINATION_PREFIX, HEC_KEYS, hec_token_env_var, token_text};
pub use lookout::{LOOKOUT_KEYS, api_key_env_var, key_file_text};
pub use proxy::PROXY_KEYS;
pub use syslog::{
    DEFAULT_RELP_WINDOW, MAX_RELP_WINDOW, MAX_STREAM_MESSAGE_SIZE, MAX_UDP_MESSAGE_SIZE,
    MIN_MESSAGE_SIZE, QRADAR_IDENTIFIER_KEY, SYSLOG_KEYS,
};
pub use value::{parse_timestamp, sanitize_hostname};

use super::raw::{self, RawIni, RawSection};
use super::{Config, TenantConfig};
use crate::small_file;
use chrono::{DateTime, Utc};
use destination::{Destinations, destination_keys};
use std::path::Path;
use syslog::SyslogKeys;

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
    let bytes = match small_file::read(path, small_file::TEXT_LIMIT) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(ConfigError {
                problems: vec![Problem::file(
                    path,
                    format!(
                        "cannot read the file: {}; check the path given to --config",
                        file_reason(&e)
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

// ---------------------------------------------------------------------------------------
// Validation.

/// Where a value came from: for messages, and so a problem in a shared section is
/// reported once however many tenants use it.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    section: &'a str,
    key: &'a str,
    value: &'a str,
}

/// The validation of one file: what it reads from outside, and what it has found.
struct Check<'a, 'c> {
    file: &'a Path,
    ctx: &'a LoadContext<'c>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

/// The entry of `key` in `section`, if set; an empty value counts as not set unless
/// `keep_empty`.
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
        let tenants = self.tenant_scopes(raw);
        let destinations = self.destinations(raw);
        let built = self.tenants(&tenants, &destinations);
        if let Some(built) = &built {
            self.unused_destinations(&destinations, built);
        }
        if tenants.is_empty() {
            // Still check the destination, so every problem is reported at once.
            self.syslog_destination(&SyslogKeys::section(raw.section("syslog")));
        }
        if tenants.len() > 1 && (self.ctx.env)("MRAV2_API_KEY").is_some_and(|v| !v.is_empty()) {
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
        if tenants.is_empty() {
            return None;
        }
        Some(Config {
            path: self.file.to_path_buf(),
            tenants: built?,
            proxy: proxy?,
            connector: connector?,
            warnings: Vec::new(),
        })
    }

    fn known_sections_and_keys(&mut self, raw: &RawIni) {
        let mut named_keys;
        for section in &raw.sections {
            let name = section.name.as_str();
            let is_tenant = name == "lookout" || name.starts_with("lookout:");
            let accepted: &[&str] = match name {
                "syslog" => SYSLOG_KEYS,
                "proxy" => PROXY_KEYS,
                "connector" => CONNECTOR_KEYS,
                _ if is_tenant => LOOKOUT_KEYS,
                _ if name.starts_with(DESTINATION_PREFIX) => {
                    // An unknown type is reported by the destination itself.
                    let Some(keys) = destination_keys(section) else {
                        continue;
                    };
                    named_keys = keys;
                    &named_keys
                }
                _ => {
                    self.problems.push(Problem::section(
                        self.file,
                        name,
                        "unknown section; expected [lookout], [lookout:NAME], [syslog], [destination:NAME], [proxy] or [connector]",
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

    /// A destination the file defines but no tenant uses is a warning: its events go
    /// nowhere, which is rarely what was meant.
    fn unused_destinations(&mut self, defined: &Destinations, tenants: &[TenantConfig]) {
        for name in defined.names() {
            if tenants
                .iter()
                .all(|t| t.destinations.iter().all(|d| d.name() != name))
            {
                let section = if name == "syslog" {
                    "syslog".to_owned()
                } else {
                    format!("{DESTINATION_PREFIX}{name}")
                };
                self.warnings.push(
                    Problem::section(
                        self.file,
                        &section,
                        format!("no tenant uses the destination {name}; add it to a tenant's destinations, or remove the section"),
                    )
                    .to_string(),
                );
            }
        }
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
}

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

fn file_reason(e: &small_file::SmallFileError) -> String {
    match e {
        small_file::SmallFileError::Io(io) => io_reason(io),
        other => other.to_string(),
    }
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

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
