//! Human-readable summaries of a validated configuration, for `check-config` and the
//! start-up log. They never include a secret: API keys and proxy passwords are not part
//! of any summary, and proxy addresses carry no credentials once validated.

use super::{
    Config, DestinationConfig, Format, Framing, HeaderFormat, HeaderTime, HecConfig, Protocol,
    ProxyConfig, SyslogConfig, TenantConfig,
};
use std::fmt;

impl TenantConfig {
    /// `api_domain` as text without a trailing `/`, ready for `format!("{base}/path")`.
    pub fn api_base(&self) -> &str {
        self.api_domain.as_str().trim_end_matches('/')
    }

    /// Where the stream starts when there is no saved state, e.g. `id=0`,
    /// `stream_position 01a1…` or `start_time 2026-11-20T00:00:00+00:00`.
    pub fn start_description(&self) -> String {
        match (&self.stream_position, &self.start_time) {
            (Some(p), _) => format!("stream_position {p}"),
            (None, Some(t)) => format!("start_time {}", t.format("%Y-%m-%dT%H:%M:%S+00:00")),
            (None, None) => "id=0".to_string(),
        }
    }

    /// Where the tenant's events go: each destination's description, joined by `; `.
    pub fn destination_description(&self) -> String {
        self.destinations
            .iter()
            .map(DestinationConfig::description)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A few lines describing the tenant, without secrets: its stream, then each
    /// destination and the format written there.
    pub fn summary(&self) -> String {
        let types: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
        let mut out = format!(
            "tenant {} [{}]\n  api domain:  {}\n  types:       {}\n  start:       saved state if any, else {}",
            self.entity_name,
            self.section,
            self.api_base(),
            types.join(","),
            self.start_description(),
        );
        for destination in &self.destinations {
            out.push_str(&format!(
                "\n  destination: {}\n  format:      {}",
                destination.description(),
                destination.format_description()
            ));
            if let DestinationConfig::Syslog { syslog, .. } = destination
                && let Some((k, v)) = &syslog.custom_identifier
            {
                out.push_str(&format!("\n  identifier:  {k}={v}"));
            }
        }
        out
    }
}

impl DestinationConfig {
    /// Where records go: `tcp 10.0.0.5:514 (lf framing)` for `[syslog]`, `syslog NAME
    /// tcp …` for a named syslog destination, `splunk_hec NAME https://…` for HEC.
    pub fn description(&self) -> String {
        match self {
            DestinationConfig::Syslog { name, syslog } if name == "syslog" => syslog.destination(),
            DestinationConfig::Syslog { name, syslog } => {
                format!("syslog {name} {}", syslog.destination())
            }
            DestinationConfig::SplunkHec(hec) => hec.description(),
        }
    }

    /// What is written there, e.g. `qradar leef 2.0 (delimiter tab), rfc3164 header
    /// (event time), facility user (1), …`.
    pub fn format_description(&self) -> String {
        match self {
            DestinationConfig::Syslog { syslog: s, .. } => {
                let header = match s.header {
                    HeaderFormat::Rfc3164 => "rfc3164",
                    HeaderFormat::Rfc5424 => "rfc5424",
                };
                let time = match s.header_time {
                    HeaderTime::Event => "event",
                    HeaderTime::Sent => "sent",
                };
                format!(
                    "{}, {} header ({} time), facility {}, app_name {:?}, hostname {}, max {} bytes per record",
                    s.format,
                    header,
                    time,
                    facility_name(s.facility),
                    s.app_name,
                    s.hostname,
                    s.max_message_size,
                )
            }
            DestinationConfig::SplunkHec(hec) => format!(
                "{} event objects in HEC envelopes, host {}, source {}, sourcetype {}, index {}",
                if hec.format == Format::Ocsf {
                    "ocsf 1.8.0"
                } else {
                    "splunk json"
                },
                hec.host,
                hec.source,
                hec.sourcetype.as_deref().unwrap_or("lookout:mra:<type>"),
                hec.index.as_deref().unwrap_or("(the token's default)"),
            ),
        }
    }
}

impl HecConfig {
    /// E.g. `splunk_hec splunk https://splunk:8088 (splunk events, acknowledgements
    /// on, gzip, at most 500 events / 1000000 bytes per request)`.
    pub fn description(&self) -> String {
        format!(
            "splunk_hec {} {} ({} events, acknowledgements {}, {}, at most {} events / {} bytes per request)",
            self.name,
            self.url.as_str().trim_end_matches('/'),
            if self.format == Format::Ocsf {
                "ocsf"
            } else {
                "splunk"
            },
            if self.acknowledgements { "on" } else { "off" },
            if self.gzip { "gzip" } else { "uncompressed" },
            self.batch_max_events,
            self.batch_max_bytes,
        )
    }
}

impl SyslogConfig {
    /// Where records go, e.g. `tcp 10.0.0.5:514 (lf framing)`, `udp host:514`, `stdout`,
    /// or for TLS also the server name and the checks.
    pub fn destination(&self) -> String {
        let framing = match self.framing {
            Framing::Lf => "lf",
            Framing::OctetCounting => "octet-counting",
        };
        match self.protocol {
            Protocol::Stdout => "stdout".to_string(),
            Protocol::Udp => format!("udp {}:{}", self.host, self.port),
            Protocol::Tcp => format!("tcp {}:{} ({framing} framing)", self.host, self.port),
            Protocol::Relp => format!(
                "relp {}:{} (window {} records)",
                self.host, self.port, self.relp_window
            ),
            Protocol::Tls | Protocol::RelpTls => format!(
                "{} {}:{} ({}, server name {}{}{})",
                self.protocol.as_str(),
                self.host,
                self.port,
                if self.protocol == Protocol::Tls {
                    format!("{framing} framing")
                } else {
                    format!("window {} records", self.relp_window)
                },
                self.tls.server_name,
                if self.tls.verify {
                    ""
                } else {
                    ", verification off"
                },
                if self.tls.client_auth.is_some() {
                    ", client certificate"
                } else {
                    ""
                }
            ),
        }
    }
}

impl fmt::Display for Format {
    /// `qradar leef 2.0 (delimiter tab)`, `splunk json`, `splunk kv`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Leef { delimiter: '\t' } => f.write_str("qradar leef 2.0 (delimiter tab)"),
            Format::Leef { delimiter } => write!(f, "qradar leef 2.0 (delimiter {delimiter})"),
            Format::SplunkJson => f.write_str("splunk json"),
            Format::SplunkKv => f.write_str("splunk kv"),
            Format::Cef => f.write_str("cef"),
            Format::Ocsf => f.write_str("ocsf 1.8.0"),
        }
    }
}

/// `user (1)`, or the bare number for facilities without an agreed name (13–15).
fn facility_name(facility: u8) -> String {
    const NAMES: [&str; 13] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp",
    ];
    match facility {
        0..=12 => format!("{} ({facility})", NAMES[usize::from(facility)]),
        16..=23 => format!("local{} ({facility})", facility - 16),
        _ => facility.to_string(),
    }
}

impl Config {
    /// The `check-config` report: every tenant, the proxy and the connector settings.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for t in &self.tenants {
            out.push_str(&t.summary());
            out.push('\n');
        }
        match &self.proxy {
            ProxyConfig::FromEnvironment => {
                out.push_str("proxy: from HTTPS_PROXY/HTTP_PROXY/NO_PROXY if set\n")
            }
            ProxyConfig::Explicit(p) => out.push_str(&format!(
                "proxy: {}{}\n",
                p.address,
                p.username
                    .as_ref()
                    .map(|u| format!(" (user {u})"))
                    .unwrap_or_default()
            )),
        }
        if let Some(addr) = self.connector.metrics_listen {
            out.push_str(&format!("metrics: http://{addr}/metrics\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_names() {
        assert_eq!(facility_name(1), "user (1)");
        assert_eq!(facility_name(13), "13");
        assert_eq!(facility_name(23), "local7 (23)");
    }

    #[test]
    fn summary_names_what_matters_and_no_secret() {
        let config = crate::config::load_str_with_env(
            std::path::Path::new("c.ini"),
            "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com/\napi_key = sekrit\n\
             stream_position = 0192\n[syslog]\nprotocol = tls\nhost = siem\nforwarder_type = splunk\n\
             [proxy]\naddress = http://bob:sekrit2@proxy:3128\n",
            &|_| None,
        )
        .unwrap();
        let s = config.summary();
        for part in [
            "tenant acme [lookout]",
            "api domain:  https://api.lookout.com\n",
            "stream_position 0192",
            "tls siem:6514 (octet-counting framing, server name siem)",
            "splunk json",
            "facility user (1)",
            "proxy: http://proxy:3128/ (user bob)",
        ] {
            assert!(s.contains(part), "{part:?} not in:\n{s}");
        }
        assert!(!s.contains("sekrit"), "{s}");
    }
}
