//! The keys of one syslog destination → [`SyslogConfig`].
//!
//! This module owns the `[syslog]` keys: their defaults, how they combine (`protocol`
//! with `use_udp`, `forwarder_type` with `leef_delimiter` and `splunk_format`, the
//! HOSTNAME precedence, the `max_message_size` bounds per protocol, the TLS settings)
//! and the warnings for keys that do nothing. It reads the keys through [`SyslogKeys`],
//! so the same rules apply to a section read on its own and to `[syslog]` as a tenant
//! sees it after its `syslog_` overrides. Where those overrides come from is the tenant
//! loader's business ([`super::lookout`]).

use super::value::{
    BOOL_MSG, is_app_name, is_attribute_key, is_host, is_hostname, is_server_name, parse_bool,
    parse_facility, parse_framing, parse_header_format, parse_header_time, parse_leef_delimiter,
    parse_protocol, parse_size, parse_uint, sanitize_hostname,
};
use super::{Check, Entry, entry};
use crate::config::raw::RawSection;
use crate::config::{Format, Framing, HeaderFormat, HeaderTime, Protocol, SyslogConfig, TlsConfig};
use std::path::PathBuf;

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
    "relp_window",
    "max_events_per_second",
];

/// Smallest accepted `max_message_size`: the size every RFC 5426 receiver must accept.
pub const MIN_MESSAGE_SIZE: usize = 480;
/// Largest accepted `max_message_size` for udp: the largest IPv4 UDP payload.
pub const MAX_UDP_MESSAGE_SIZE: usize = 65507;
/// Largest accepted `max_message_size` for tcp, tls and stdout.
pub const MAX_STREAM_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Default `relp_window`: what librelp's own clients use.
pub const DEFAULT_RELP_WINDOW: usize = 128;
/// Largest accepted `relp_window`. The answers to that many records (about 20 bytes
/// each) stay well inside a socket's default receive buffer, so a sender that writes a
/// whole window before reading cannot stall a receiver that answers as it reads.
pub const MAX_RELP_WINDOW: usize = 4096;

/// Largest accepted `max_events_per_second`: far above what one tenant can send, so
/// it only catches typing slips.
pub const MAX_EVENTS_PER_SECOND: u32 = 10_000_000;

/// The `log_identifier_key` value that makes `log_identifier` the record HOSTNAME.
pub const QRADAR_IDENTIFIER_KEY: &str = "qradarLogSourceIdentifier";

const HOSTNAME_RULE: &str = "expected 1 to 255 printable ascii characters without spaces";

/// Where the keys of one syslog destination are read from: a section, and the sections
/// whose `syslog_K` keys override its key `K` (none for a section read on its own).
pub(super) struct SyslogKeys<'a> {
    /// The section holding the destination's keys.
    section: Option<&'a RawSection>,
    /// Sections whose `syslog_K` overrides `K`, most specific first.
    overrides: [Option<&'a RawSection>; 2],
}

impl<'a> SyslogKeys<'a> {
    /// The keys of `section` as written there.
    pub(super) fn section(section: Option<&'a RawSection>) -> Self {
        Self::with_overrides(section, [None, None])
    }

    /// The keys of `section`, each overridden by the first of `overrides` that sets it
    /// with the `syslog_` prefix.
    pub(super) fn with_overrides(
        section: Option<&'a RawSection>,
        overrides: [Option<&'a RawSection>; 2],
    ) -> Self {
        Self { section, overrides }
    }

    /// The effective entry of `key`. An empty value is "not set", except for `app_name`,
    /// where empty omits the tag. The `[syslog]` key `syslog_format` is overridden by
    /// `syslog_format` (or `syslog_syslog_format`).
    pub(super) fn get(&self, key: &str) -> Option<Entry<'a>> {
        let keep_empty = key == "app_name";
        let prefixed = format!("syslog_{key}");
        let mut names = vec![prefixed.as_str()];
        if key == "syslog_format" {
            names = vec!["syslog_format", "syslog_syslog_format"];
        }
        for section in self.overrides {
            for name in &names {
                if let Some(e) = entry(section, name, keep_empty) {
                    return Some(e);
                }
            }
        }
        entry(self.section, key, keep_empty)
    }
}

impl Check<'_, '_> {
    /// Validates one syslog destination. Every key is checked even after a problem, so
    /// all problems are reported at once.
    pub(super) fn syslog_destination(&mut self, keys: &SyslogKeys<'_>) -> Option<SyslogConfig> {
        let protocol = self.protocol(keys);
        let (default_port, default_framing) = match protocol {
            Some(Protocol::Tls) => (6514, Framing::OctetCounting),
            Some(Protocol::Relp | Protocol::RelpTls) => (2514, Framing::Lf),
            _ => (514, Framing::Lf),
        };
        let host = self.parse(
            keys.get("host"),
            "localhost".to_string(),
            |v| is_host(v).then(|| v.to_string()),
            "not a host name or address; expected e.g. siem.example.com, 10.0.0.5 or ::1",
        );
        let port = self.parse(
            keys.get("port"),
            default_port,
            |v| {
                parse_uint(v)
                    .filter(|n| (1..=65535).contains(n))
                    .and_then(|n| u16::try_from(n).ok())
            },
            "not a port; expected a number from 1 to 65535",
        );
        let framing = self.parse(
            keys.get("framing"),
            default_framing,
            parse_framing,
            "unknown framing; expected lf or octet-counting",
        );
        let (format, forwarder) = self.format(keys);
        let header = self.parse(
            keys.get("syslog_format"),
            HeaderFormat::Rfc3164,
            parse_header_format,
            "unknown syslog format; expected rfc3164 or rfc5424",
        );
        let facility = self.parse(
            keys.get("facility"),
            1,
            parse_facility,
            "unknown facility; expected a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, local0 to local7) or a number from 0 to 23",
        );
        let app_name = self.parse(
            keys.get("app_name"),
            "lookout-mra".to_string(),
            |v| is_app_name(v).then(|| v.to_string()),
            "not a valid app name; expected 1 to 32 of A-Z a-z 0-9 . _ - (or empty to omit the tag)",
        );
        let header_time = self.parse(
            keys.get("header_time"),
            HeaderTime::Event,
            parse_header_time,
            "unknown header time; expected event or sent",
        );
        let (hostname, custom_identifier) = self.hostname(keys);
        let max_message_size = self.max_message_size(keys, protocol);
        let relp_window = self.parse(
            keys.get("relp_window"),
            DEFAULT_RELP_WINDOW,
            |v| {
                parse_uint(v)
                    .filter(|n| (1..=MAX_RELP_WINDOW as u64).contains(n))
                    .map(|n| n as usize)
            },
            &format!("not a relp window; expected a number of records from 1 to {MAX_RELP_WINDOW}"),
        );
        let max_events_per_second = self.max_events_per_second(keys.get("max_events_per_second"));
        let tls = self.tls(keys, protocol, host.as_deref());
        self.ignored_keys(keys, protocol, forwarder);

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
            relp_window: relp_window?,
            max_events_per_second: max_events_per_second?,
        })
    }

    /// `max_events_per_second` of any destination: 0 (no limit, the default) to
    /// [`MAX_EVENTS_PER_SECOND`].
    pub(super) fn max_events_per_second(&mut self, e: Option<Entry<'_>>) -> Option<u32> {
        self.parse(
            e,
            0,
            |v| {
                parse_uint(v)
                    .filter(|n| *n <= u64::from(MAX_EVENTS_PER_SECOND))
                    .and_then(|n| u32::try_from(n).ok())
            },
            &format!(
                "not a rate; expected a whole number of events per second from 1 to {MAX_EVENTS_PER_SECOND}, or 0 for no limit"
            ),
        )
    }

    /// `protocol`, or the older `use_udp`; both set must agree.
    fn protocol(&mut self, keys: &SyslogKeys<'_>) -> Option<Protocol> {
        let protocol_entry = keys.get("protocol");
        let protocol = self.parse(
            protocol_entry,
            Protocol::Tcp,
            parse_protocol,
            "unknown protocol; expected udp, tcp, tls, relp, relp-tls or stdout",
        );
        let use_udp_entry = keys.get("use_udp");
        let use_udp = self.parse(use_udp_entry, None, |v| parse_bool(v).map(Some), BOOL_MSG);
        match (protocol, use_udp, protocol_entry, use_udp_entry) {
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
        }
    }

    /// The message format (`forwarder_type` with `leef_delimiter` or `splunk_format`),
    /// and whether the forwarder is Splunk (for the ignored-key warnings).
    fn format(&mut self, keys: &SyslogKeys<'_>) -> (Option<Format>, Option<&'static str>) {
        let delimiter = self.parse(
            keys.get("leef_delimiter"),
            '\t',
            parse_leef_delimiter,
            "not a valid leef delimiter; expected tab (the default), one ascii punctuation character other than = and \\, or its code as 0xHH",
        );
        let splunk_kv = self.parse(
            keys.get("splunk_format"),
            false,
            |v| match v.to_ascii_lowercase().as_str() {
                "json" => Some(false),
                "kv" => Some(true),
                _ => None,
            },
            "unknown splunk format; expected json or kv",
        );
        let forwarder = self.parse(
            keys.get("forwarder_type"),
            "qradar",
            |v| {
                ["qradar", "splunk", "cef", "ocsf"]
                    .into_iter()
                    .find(|known| v.eq_ignore_ascii_case(known))
            },
            "unknown forwarder type; expected qradar, splunk, cef or ocsf",
        );
        let format = match (forwarder, splunk_kv, delimiter) {
            (Some("splunk"), Some(true), _) => Some(Format::SplunkKv),
            (Some("splunk"), Some(false), _) => Some(Format::SplunkJson),
            (Some("qradar"), _, Some(delimiter)) => Some(Format::Leef { delimiter }),
            (Some("cef"), _, _) => Some(Format::Cef),
            (Some("ocsf"), _, _) => Some(Format::Ocsf),
            _ => None,
        };
        (format, forwarder)
    }

    /// The record HOSTNAME (`hostname` > QRadar log source identifier > the machine's
    /// name) and the custom identifier attribute (`log_identifier_key` = any other key).
    /// `None` in either place means a problem was reported.
    fn hostname(
        &mut self,
        keys: &SyslogKeys<'_>,
    ) -> (Option<String>, Option<Option<(String, String)>>) {
        let hostname_key = self.parse(
            keys.get("hostname"),
            None,
            |v| is_hostname(v).then(|| Some(v.to_string())),
            &format!("not a valid hostname; {HOSTNAME_RULE}"),
        );
        let identifier_key = keys.get("log_identifier_key");
        let identifier = keys.get("log_identifier");
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
        (hostname, custom_identifier)
    }

    /// `max_message_size`, bounded by what the protocol can carry.
    fn max_message_size(
        &mut self,
        keys: &SyslogKeys<'_>,
        protocol: Option<Protocol>,
    ) -> Option<usize> {
        match protocol {
            Some(Protocol::Udp) => self.parse(
                keys.get("max_message_size"),
                1024,
                |v| parse_size(v, MIN_MESSAGE_SIZE, MAX_UDP_MESSAGE_SIZE),
                &format!(
                    "not a record size for udp; expected a number of bytes from {MIN_MESSAGE_SIZE} to {MAX_UDP_MESSAGE_SIZE}"
                ),
            ),
            _ => self.parse(
                keys.get("max_message_size"),
                65536,
                |v| parse_size(v, MIN_MESSAGE_SIZE, MAX_STREAM_MESSAGE_SIZE),
                &format!(
                    "not a record size; expected a number of bytes from {MIN_MESSAGE_SIZE} to {MAX_STREAM_MESSAGE_SIZE}"
                ),
            ),
        }
    }

    /// Warns about keys that are valid but do nothing with this protocol or format.
    fn ignored_keys(
        &mut self,
        keys: &SyslogKeys<'_>,
        protocol: Option<Protocol>,
        forwarder: Option<&str>,
    ) {
        if let Some(p @ (Protocol::Udp | Protocol::Stdout | Protocol::Relp | Protocol::RelpTls)) =
            protocol
            && let Some(e) = keys.get("framing")
        {
            self.warn(
                e,
                format!(
                    "ignored with protocol {} (framing applies to tcp and tls)",
                    p.as_str()
                ),
            );
        }
        if protocol.is_some_and(|p| !p.is_relp())
            && let Some(e) = keys.get("relp_window")
        {
            self.warn(e, "ignored because protocol is not relp or relp-tls");
        }
        if protocol.is_some_and(|p| !p.uses_tls()) {
            for key in [
                "ca_file",
                "cert_file",
                "key_file",
                "tls_verify",
                "tls_server_name",
            ] {
                if let Some(e) = keys.get(key) {
                    self.warn(e, "ignored because protocol is not tls or relp-tls");
                }
            }
        }
        // Each format-specific key is ignored, with a warning, by the other formats.
        for (key, used_by) in [("leef_delimiter", "qradar"), ("splunk_format", "splunk")] {
            if let Some(forwarder) = forwarder.filter(|f| *f != used_by)
                && let Some(e) = keys.get(key)
            {
                self.warn(e, format!("ignored because forwarder_type is {forwarder}"));
            }
        }
    }

    /// The TLS settings; the server name defaults to `host`.
    pub(super) fn tls(
        &mut self,
        keys: &SyslogKeys<'_>,
        protocol: Option<Protocol>,
        host: Option<&str>,
    ) -> Option<TlsConfig> {
        let ca_file = keys.get("ca_file").map(|e| PathBuf::from(e.value));
        let cert = keys.get("cert_file");
        let key = keys.get("key_file");
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
        let verify_entry = keys.get("tls_verify");
        let verify = self.parse(verify_entry, true, parse_bool, BOOL_MSG);
        if let (Some(false), Some(e), Some(true)) =
            (verify, verify_entry, protocol.map(Protocol::uses_tls))
        {
            self.warn(
                e,
                "certificate and host name checks are off; anyone on the network path can read and alter the records",
            );
        }
        let server_name = match keys.get("tls_server_name") {
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
                if protocol.is_some_and(Protocol::uses_tls) && !is_server_name(&host) {
                    if let Some(e) = keys.get("host") {
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
}
