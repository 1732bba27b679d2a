//! `[destination:NAME]` sections → the named destinations of the file, and each
//! tenant's `destinations` key → its list of [`DestinationConfig`]s.
//!
//! This module owns the destination names (`[A-Za-z0-9._-]+`, not `syslog`), the two
//! types (`syslog`, the default, with every `[syslog]` key; `splunk_hec` with the keys
//! of `docs/receivers/splunk-hec.md#in-configini`, their defaults and bounds), the HEC
//! token precedence (`token_file` > `MRAV2_HEC_TOKEN_<NAME>` > `token`), and which
//! destinations a tenant uses (default: every destination the file defines, else
//! `syslog`). A destination that no tenant uses is a warning.

use super::syslog::{SYSLOG_KEYS, SyslogKeys};
use super::value::{BOOL_MSG, is_entity_name, parse_bool, parse_uint};
use super::{ApiKeys, Check, Entry, entry, io_reason};
use crate::config::raw::{RawIni, RawSection};
use crate::config::{
    DestinationConfig, Format, HecConfig, Problem, Protocol, Secret, SecretSource, SyslogConfig,
};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The keys of a `[destination:NAME]` section with `type = splunk_hec`.
pub const HEC_KEYS: &[&str] = &[
    "type",
    "url",
    "token",
    "token_file",
    "index",
    "sourcetype",
    "source",
    "host",
    "forwarder_type",
    "acknowledgements",
    "batch_max_events",
    "batch_max_bytes",
    "compression",
    "request_timeout",
    "ack_timeout",
    "ca_file",
    "cert_file",
    "key_file",
    "tls_verify",
    "tls_server_name",
    "max_events_per_second",
];

/// The section prefix of a named destination.
pub const DESTINATION_PREFIX: &str = "destination:";

/// The environment variable that holds the HEC token of destination `name`:
/// `MRAV2_HEC_TOKEN_` + the name upper-cased, every other character than a letter or
/// digit written as `_` (`splunk-cloud` → `MRAV2_HEC_TOKEN_SPLUNK_CLOUD`).
pub fn hec_token_env_var(name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("MRAV2_HEC_TOKEN_{suffix}")
}

/// The keys a `[destination:NAME]` section may hold for its `type` (`None`: the type
/// is unknown, its problem is reported elsewhere). A syslog destination takes every
/// `[syslog]` key.
pub(super) fn destination_keys(section: &RawSection) -> Option<Vec<&'static str>> {
    let kind = section
        .get("type")
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase);
    match kind.as_deref() {
        None | Some("syslog") => Some(
            std::iter::once("type")
                .chain(SYSLOG_KEYS.iter().copied())
                .collect(),
        ),
        Some("splunk_hec") => Some(HEC_KEYS.to_vec()),
        Some(_) => None,
    }
}

/// The HEC token in the text of a `token_file` or its variable: without surrounding
/// spaces and line ends.
pub fn token_text(text: &str) -> &str {
    text.trim()
}

/// A validated named destination, before a tenant uses it.
#[derive(Debug, Clone)]
pub(super) enum Named {
    /// `type = syslog`: complete as it is.
    Syslog(SyslogConfig),
    /// `type = splunk_hec`; a tenant gives it its default `host` unless `host_set`.
    Hec { config: HecConfig, host_set: bool },
}

/// The destinations the file defines: whether it has `[syslog]`, and its named
/// destinations in file order (`None` for one with a problem, so a tenant naming it
/// is not reported again as naming an unknown destination).
pub(super) struct Destinations {
    syslog_section: bool,
    named: Vec<(String, Option<Named>)>,
}

impl Destinations {
    /// The names of every destination the file defines, `syslog` first when
    /// `[syslog]` is there.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.syslog_section
            .then_some("syslog")
            .into_iter()
            .chain(self.named.iter().map(|(n, _)| n.as_str()))
    }
}

impl Check<'_, '_> {
    /// Reads every `[destination:NAME]` section.
    pub(super) fn destinations(&mut self, raw: &RawIni) -> Destinations {
        let mut named = Vec::new();
        for section in &raw.sections {
            let Some(name) = section.name.strip_prefix(DESTINATION_PREFIX) else {
                continue;
            };
            if !is_entity_name(name) || name == "syslog" {
                self.problems.push(Problem::section(
                    self.file,
                    &section.name,
                    "not a usable destination name; use letters, digits, '.', '_' and '-', and not syslog (which is [syslog])",
                ));
                continue;
            }
            let built = self.destination(name, section);
            named.push((name.to_owned(), built));
        }
        Destinations {
            syslog_section: raw.section("syslog").is_some(),
            named,
        }
    }

    fn destination(&mut self, name: &str, section: &RawSection) -> Option<Named> {
        let kind = entry(Some(section), "type", false);
        match kind.map(|e| e.value.to_ascii_lowercase()).as_deref() {
            Some("splunk_hec") => self.hec(name, section),
            None | Some("syslog") => self
                .syslog_destination(&SyslogKeys::section(Some(section)))
                .map(Named::Syslog),
            Some(_) => {
                if let Some(e) = kind {
                    self.bad(e, "unknown destination type; expected syslog or splunk_hec");
                }
                None
            }
        }
    }

    /// Validates one HEC destination; every key is checked even after a problem.
    fn hec(&mut self, name: &str, section: &RawSection) -> Option<Named> {
        let get = |key: &str| entry(Some(section), key, false);
        let url = match get("url") {
            None => {
                self.problems.push(Problem::missing(
                    self.file,
                    &section.name,
                    "url",
                    "missing; set url to the HEC base url, e.g. https://splunk.example.com:8088 or https://http-inputs-ACME.splunkcloud.com",
                ));
                None
            }
            Some(e) => self.hec_url(e),
        };
        let token = self.hec_token(name, section);
        let text =
            |v: &str| (v.len() <= 1024 && !v.chars().any(char::is_control)).then(|| v.to_owned());
        let index = self.parse(
            get("index"),
            None,
            |v| {
                (v.len() <= 80
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                    && !v.starts_with(['_', '-']))
                .then(|| Some(v.to_owned()))
            },
            "not a splunk index name; expected letters, digits, '_' and '-', not starting with '_' or '-'",
        );
        let sourcetype = self.parse(get("sourcetype"), None, |v| text(v).map(Some), "not usable as a sourcetype; expected text without control characters, up to 1024 bytes");
        let source = self.parse(
            get("source"),
            "mrav2-syslog-connector".to_owned(),
            text,
            "not usable as a source; expected text without control characters, up to 1024 bytes",
        );
        let host = self.parse(
            get("host"),
            None,
            |v| text(v).map(Some),
            "not usable as a host; expected text without control characters, up to 1024 bytes",
        );
        let format = self.parse(
            get("forwarder_type"),
            Format::SplunkJson,
            |v| match v.to_ascii_lowercase().as_str() {
                "splunk" => Some(Format::SplunkJson),
                "ocsf" => Some(Format::Ocsf),
                _ => None,
            },
            "unknown forwarder type for splunk_hec; expected splunk (the Splunk JSON event object) or ocsf (an OCSF 1.8.0 object)",
        );
        let acknowledgements = self.parse(get("acknowledgements"), false, parse_bool, BOOL_MSG);
        let batch_max_events = self.parse(
            get("batch_max_events"),
            500,
            |v| parse_uint(v).filter(|n| (1..=100_000).contains(n)),
            "not a number of events from 1 to 100000",
        );
        let batch_max_bytes = self.parse(
            get("batch_max_bytes"),
            1_000_000,
            |v| parse_uint(v).filter(|n| (1024..=100_000_000).contains(n)),
            "not a size from 1024 to 100000000 bytes",
        );
        let gzip = self.parse(
            get("compression"),
            true,
            |v| match v.to_ascii_lowercase().as_str() {
                "gzip" => Some(true),
                "none" => Some(false),
                _ => None,
            },
            "unknown compression; expected gzip or none",
        );
        let request_timeout = self.parse(
            get("request_timeout"),
            30,
            |v| parse_uint(v).filter(|n| (1..=3600).contains(n)),
            "not a number of seconds from 1 to 3600",
        );
        let ack_timeout = self.parse(
            get("ack_timeout"),
            300,
            |v| parse_uint(v).filter(|n| (1..=86_400).contains(n)),
            "not a number of seconds from 1 to 86400",
        );
        let max_events_per_second = self.max_events_per_second(get("max_events_per_second"));
        let https = url.as_ref().is_some_and(|u: &Url| u.scheme() == "https");
        // The name the certificate is checked for by default; an IPv6 address without
        // its brackets.
        let url_host = url.as_ref().and_then(Url::host).map(|h| match h {
            url::Host::Domain(d) => d.to_owned(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        });
        let tls = self.tls(
            &SyslogKeys::section(Some(section)),
            https.then_some(Protocol::Tls),
            url_host.as_deref(),
        );
        let host = host?;
        Some(Named::Hec {
            host_set: host.is_some(),
            config: HecConfig {
                name: name.to_owned(),
                url: url?,
                token: token.as_ref()?.0.clone(),
                token_source: token?.1,
                index: index?,
                sourcetype: sourcetype?,
                source: source?,
                host: host.unwrap_or_default(),
                format: format?,
                acknowledgements: acknowledgements?,
                batch_max_events: usize::try_from(batch_max_events?).ok()?,
                batch_max_bytes: usize::try_from(batch_max_bytes?).ok()?,
                gzip: gzip?,
                request_timeout: Duration::from_secs(request_timeout?),
                ack_timeout: Duration::from_secs(ack_timeout?),
                tls: tls?,
                max_events_per_second: max_events_per_second?,
            },
        })
    }

    /// `url`: http(s), a host, no credentials, query or fragment. `http://` is allowed
    /// with a warning (tests).
    fn hec_url(&mut self, e: Entry<'_>) -> Option<Url> {
        let Ok(url) = Url::parse(e.value) else {
            self.bad(
                e,
                "not a url; expected e.g. https://splunk.example.com:8088",
            );
            return None;
        };
        let problem = match url.scheme() {
            _ if url.host_str().is_none_or(str::is_empty) => Some("has no host"),
            "https" | "http" if !url.username().is_empty() || url.password().is_some() => {
                Some("must not hold credentials; put the token in token_file")
            }
            "https" | "http" if url.query().is_some() || url.fragment().is_some() => {
                Some("must not have a query or fragment; give the base url only")
            }
            "https" => None,
            "http" => {
                self.warn(e, "plain http: the token and the events travel unencrypted; use https outside tests");
                None
            }
            _ => Some("unsupported scheme; expected https:// (or http:// for tests)"),
        };
        if let Some(problem) = problem {
            self.bad(e, problem);
            return None;
        }
        Some(url)
    }

    /// The token: `token_file` > `MRAV2_HEC_TOKEN_<NAME>` > `token`.
    fn hec_token(&mut self, name: &str, section: &RawSection) -> Option<(Secret, SecretSource)> {
        if self.ctx.api_keys == ApiKeys::Skip {
            return Some((Secret::new(String::new()), SecretSource::ConfigFile));
        }
        if let Some(e) = entry(Some(section), "token_file", false) {
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
                    let token = token_text(&text);
                    if token.is_empty() {
                        self.bad(e, "the file is empty; put the HEC token in it");
                        None
                    } else {
                        Some((
                            Secret::new(token),
                            SecretSource::File(PathBuf::from(e.value)),
                        ))
                    }
                }
            };
        }
        let variable = hec_token_env_var(name);
        if let Some(token) = (self.ctx.env)(&variable).filter(|v| !v.trim().is_empty()) {
            return Some((
                Secret::new(token_text(&token)),
                SecretSource::Environment(variable),
            ));
        }
        if let Some(e) = entry(Some(section), "token", false) {
            return Some((Secret::new(e.value), SecretSource::ConfigFile));
        }
        self.problems.push(Problem::missing(
            self.file,
            &section.name,
            "token",
            format!("missing; set token_file (or {variable}, or token) to the HEC token"),
        ));
        None
    }

    /// The destinations of one tenant from its `destinations` entry (or the default),
    /// with `syslog` its syslog settings. `None` after a problem.
    pub(super) fn tenant_destinations(
        &mut self,
        list: Option<Entry<'_>>,
        defined: &Destinations,
        syslog: Option<&SyslogConfig>,
    ) -> Option<Vec<DestinationConfig>> {
        let names: Vec<String> = match list {
            Some(e) => {
                let names: Vec<String> = e
                    .value
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
                if names.is_empty() {
                    self.bad(e, "no destination named; list one, e.g. syslog or the NAME of a [destination:NAME]");
                    return None;
                }
                let mut ok = true;
                for (i, n) in names.iter().enumerate() {
                    if names[..i].contains(n) {
                        self.bad(
                            e,
                            format!("{n} is listed twice; list each destination once"),
                        );
                        ok = false;
                    } else if n != "syslog" && !defined.named.iter().any(|(d, _)| d == n) {
                        self.bad(e, format!("{n} is not a destination of this file; expected syslog or the NAME of a [destination:NAME] section"));
                        ok = false;
                    }
                }
                if !ok {
                    return None;
                }
                names
            }
            None => {
                let mut names: Vec<String> = Vec::new();
                if defined.syslog_section || defined.named.is_empty() {
                    names.push("syslog".into());
                }
                names.extend(defined.named.iter().map(|(n, _)| n.clone()));
                names
            }
        };
        let mut out = Vec::new();
        for n in names {
            if n == "syslog" {
                out.push(DestinationConfig::Syslog {
                    name: n,
                    syslog: syslog?.clone(),
                });
                continue;
            }
            let (_, named) = defined.named.iter().find(|(d, _)| *d == n)?;
            out.push(match named.as_ref()? {
                Named::Syslog(config) => DestinationConfig::Syslog {
                    name: n,
                    syslog: config.clone(),
                },
                Named::Hec { config, host_set } => {
                    let mut config = config.clone();
                    if !host_set {
                        // HOSTNAME precedence of [syslog]: hostname > QRadar identifier > machine.
                        config.host = syslog?.hostname.clone();
                    }
                    DestinationConfig::SplunkHec(config)
                }
            });
        }
        Some(out)
    }
}
