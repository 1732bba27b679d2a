//! Configuration: INI text → raw sections → validated [`Config`].
//!
//! This module owns the *validated* types that the rest of the program runs on. Parsing
//! and validation live in [`load`]: it reads the Python connector's `config.ini`
//! unchanged, collects **every** problem before reporting, and never touches the
//! network. A value that reaches these types has already been checked, so the running
//! program does not re-validate.

mod describe;
pub mod load;
mod problem;
mod raw;

use crate::event::{EventType, Position};
use chrono::{DateTime, Utc};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

pub use load::{ApiKeys, LoadContext, load_file, load_str, load_str_with_env, load_with};
pub use problem::{ConfigError, Problem};

/// A secret string (API key, access token, proxy password). Its `Debug` and `Display`
/// print `***`; only [`Secret::expose`] gives the value, at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is sent, never where it is logged.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret (an Application Key, a HEC token) was read from, so that one the
/// receiver refuses can be read again from the same place (`docs/operations.md`, key
/// rotation). Only a file can really change under a running process: its environment
/// is fixed when it starts, and the configuration file changes by reload or restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `api_key_file` or `token_file`.
    File(PathBuf),
    /// This environment variable.
    Environment(String),
    /// The configuration file itself (`api_key`, `token`), or nowhere (a config loaded
    /// without its keys).
    ConfigFile,
}

impl SecretSource {
    /// Reads the secret again, through `clean` (the loader's rule for line ends and
    /// spaces). `Ok(None)`: nothing to re-read here (the configuration file, or an
    /// unset or empty variable). The error names the file and the reason, never the
    /// content.
    pub fn read(&self, clean: fn(&str) -> &str) -> Result<Option<Secret>, String> {
        match self {
            SecretSource::File(path) => {
                let text = crate::small_file::read_to_string(path, crate::small_file::TEXT_LIMIT)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let value = clean(&text);
                if value.trim().is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(Some(Secret::new(value)))
            }
            SecretSource::Environment(name) => Ok(std::env::var(name)
                .ok()
                .map(|v| clean(&v).to_string())
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)),
            SecretSource::ConfigFile => Ok(None),
        }
    }

    /// Whether [`SecretSource::read`] can see a change without a restart: a file.
    pub fn can_change(&self) -> bool {
        matches!(self, SecretSource::File(_))
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Environment(name) => write!(f, "environment variable {name}"),
            SecretSource::ConfigFile => f.write_str("the configuration file"),
        }
    }
}

/// The whole validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages and the default state directory).
    pub path: PathBuf,
    /// One entry per tenant, in file order (`[lookout]` first, then `[lookout:NAME]`).
    pub tenants: Vec<TenantConfig>,
    /// `[proxy]`.
    pub proxy: ProxyConfig,
    /// `[connector]`.
    pub connector: ConnectorConfig,
    /// Things worth telling the operator once logging is up (world-readable key file,
    /// `http://` API, ignored compatibility keys, a `start_time` beyond retention). They
    /// never contain a secret.
    pub warnings: Vec<String>,
}

/// `[connector]`: process-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    /// `state_dir` from the file, if set (the CLI and `$STATE_DIRECTORY` are applied by
    /// [`ConnectorConfig::resolve_state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// `metrics_listen`: where `/metrics` and `/health` are served; `None` = off.
    pub metrics_listen: Option<SocketAddr>,
    /// `commit_interval_ms`.
    pub commit_interval: Duration,
}

/// `[proxy]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ProxyConfig {
    /// No `[proxy] address`: the standard `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`
    /// environment variables apply.
    #[default]
    FromEnvironment,
    /// An explicit proxy for every API request, whatever the API URL's scheme.
    Explicit(Proxy),
}

/// An explicit proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    /// `http://`, `https://` or `socks5://` URL, without credentials.
    pub address: Url,
    /// Basic (HTTP) or RFC 1929 (SOCKS5) credentials.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Hosts that bypass the proxy (`no_proxy`, comma-separated in the file).
    pub no_proxy: Vec<String>,
}

/// One tenant: its API access and its syslog destination. Equality compares every
/// setting, the API key by value (a reload restarts a tenant whose key changed).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    /// `entity_name`: `[A-Za-z0-9._-]+`, unique; names the state file.
    pub entity_name: String,
    /// The INI section it came from (`lookout` or `lookout:NAME`), for messages.
    pub section: String,
    /// `api_domain` with any trailing `/` removed.
    pub api_domain: Url,
    /// The Application Key, from `api_key_file` > environment > `api_key`; empty when
    /// the config was loaded without its keys ([`ApiKeys::Skip`], for `status`).
    pub api_key: Secret,
    /// Where `api_key` came from, to read it again when the token endpoint refuses it.
    pub api_key_source: SecretSource,
    /// The requested types, non-empty, in query order.
    pub types: Vec<EventType>,
    /// `stream_position` unless it is `0`.
    pub stream_position: Option<Position>,
    /// `start_time`, normalised to UTC.
    pub start_time: Option<DateTime<Utc>>,
    /// `sse_timeout`: time without any byte before the stream is declared dead.
    pub sse_timeout: Duration,
    /// `ca_file`: extra roots for the API and the proxy.
    pub ca_file: Option<PathBuf>,
    /// `max_event_size`, bytes.
    pub max_event_size: usize,
    /// The `[syslog]` settings, after `syslog_*` overrides: the destination named
    /// `syslog` when the tenant uses it, and the HOSTNAME and custom identifier a HEC
    /// destination takes by default.
    pub syslog: SyslogConfig,
    /// Where the tenant's events go, from its `destinations` key (default: every
    /// destination the file defines, else `syslog`). Never empty, names unique, in the
    /// order listed (or the file's order).
    pub destinations: Vec<DestinationConfig>,
}

/// One place a tenant's events go (`[syslog]` or `[destination:NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationConfig {
    /// A syslog receiver: `[syslog]` (named `syslog`, with the tenant's `syslog_*`
    /// overrides) or `[destination:NAME]` with `type = syslog`.
    Syslog {
        /// `syslog`, or NAME of `[destination:NAME]`.
        name: String,
        /// Its settings.
        syslog: SyslogConfig,
    },
    /// A Splunk HTTP Event Collector.
    SplunkHec(HecConfig),
}

/// `[destination:NAME]` with `type = splunk_hec`.
#[derive(Debug, Clone, PartialEq)]
pub struct HecConfig {
    /// NAME, `[A-Za-z0-9._-]+`, not `syslog`.
    pub name: String,
    /// `url`: the base URL; `/services/collector/event` is appended.
    pub url: Url,
    /// The HEC token, from `token_file` > `MRAV2_HEC_TOKEN_<NAME>` > `token`.
    pub token: Secret,
    /// Where `token` came from, to read it again when HEC refuses it.
    pub token_source: SecretSource,
    /// `index`; `None`: the token's default index.
    pub index: Option<String>,
    /// `sourcetype`; `None`: `lookout:mra:<type in lowercase>` per event.
    pub sourcetype: Option<String>,
    /// `source`.
    pub source: String,
    /// `host` of every event (HOSTNAME precedence of `[syslog]`).
    pub host: String,
    /// `forwarder_type`: what the envelope's `event` is, [`Format::SplunkJson`] (the
    /// default) or [`Format::Ocsf`]; never another format.
    pub format: Format,
    /// `acknowledgements`: wait for indexer acknowledgement.
    pub acknowledgements: bool,
    /// `batch_max_events`.
    pub batch_max_events: usize,
    /// `batch_max_bytes` (uncompressed).
    pub batch_max_bytes: usize,
    /// `compression = gzip`.
    pub gzip: bool,
    /// `request_timeout`.
    pub request_timeout: Duration,
    /// `ack_timeout`.
    pub ack_timeout: Duration,
    /// `ca_file`, `cert_file`/`key_file`, `tls_verify`, and `tls_server_name`: the
    /// name the collector's certificate must hold (default: the URL's host).
    pub tls: TlsConfig,
    /// `max_events_per_second`: events per second at most, on average; 0 = no limit.
    pub max_events_per_second: u32,
}

impl DestinationConfig {
    /// The destination's name: `syslog` or NAME of `[destination:NAME]`.
    pub fn name(&self) -> &str {
        match self {
            DestinationConfig::Syslog { name, .. } => name,
            DestinationConfig::SplunkHec(hec) => &hec.name,
        }
    }

    /// `max_events_per_second` of the destination; 0 = no limit.
    pub fn max_events_per_second(&self) -> u32 {
        match self {
            DestinationConfig::Syslog { syslog, .. } => syslog.max_events_per_second,
            DestinationConfig::SplunkHec(hec) => hec.max_events_per_second,
        }
    }
}

/// `[syslog]` (with a tenant's `syslog_*` overrides applied).
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogConfig {
    /// `host`.
    pub host: String,
    /// `port` (default 514, 6514 for tls, 2514 for relp and relp-tls).
    pub port: u16,
    /// `protocol` (or `use_udp = true`).
    pub protocol: Protocol,
    /// `framing` (meaningful for tcp and tls only; RELP frames every record itself).
    pub framing: Framing,
    /// `forwarder_type` with `leef_delimiter` / `splunk_format`.
    pub format: Format,
    /// `syslog_format`.
    pub header: HeaderFormat,
    /// `facility`, 0–23.
    pub facility: u8,
    /// `app_name`; empty omits the RFC 3164 TAG.
    pub app_name: String,
    /// `header_time`.
    pub header_time: HeaderTime,
    /// The HOSTNAME of every record, resolved by precedence: `hostname` > QRadar log
    /// source identifier > the machine's host name (sanitised).
    pub hostname: String,
    /// `log_identifier_key = K` (K not `qradarLogSourceIdentifier`) with
    /// `log_identifier = V`: the `K=V` attribute added to every event.
    pub custom_identifier: Option<(String, String)>,
    /// `max_message_size`, bytes per record (header + message).
    pub max_message_size: usize,
    /// TLS settings (used when `protocol = tls` or `relp-tls`).
    pub tls: TlsConfig,
    /// `relp_window`: records sent on a RELP session and not answered yet, at most
    /// (meaningful for relp and relp-tls only).
    pub relp_window: usize,
    /// `max_events_per_second`: records per second at most, on average; 0 = no limit.
    pub max_events_per_second: u32,
}

/// Syslog transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
    Tls,
    /// RELP over TCP: every record is answered by the receiver.
    Relp,
    /// RELP over TLS, with the same TLS settings as `tls`.
    RelpTls,
    Stdout,
}

impl Protocol {
    /// Whether records go over TLS (`tls`, `relp-tls`).
    pub fn uses_tls(self) -> bool {
        matches!(self, Protocol::Tls | Protocol::RelpTls)
    }

    /// Whether records go over RELP (`relp`, `relp-tls`).
    pub fn is_relp(self) -> bool {
        matches!(self, Protocol::Relp | Protocol::RelpTls)
    }

    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Relp => "relp",
            Protocol::RelpTls => "relp-tls",
            Protocol::Stdout => "stdout",
        }
    }
}

/// Stream framing for TCP and TLS (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The record followed by one LF.
    Lf,
    /// `MSG-LEN SP RECORD`.
    OctetCounting,
}

/// What the message part of a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// QRadar LEEF 2.0 with this attribute delimiter.
    Leef { delimiter: char },
    /// Splunk, one compact JSON object per record.
    SplunkJson,
    /// Splunk, `key="value"` pairs.
    SplunkKv,
    /// ArcSight CEF (also Microsoft Sentinel's CEF connector).
    Cef,
    /// OCSF 1.8.0, one compact JSON object per record.
    Ocsf,
}

/// The record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFormat {
    Rfc3164,
    Rfc5424,
}

/// Which time the record header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderTime {
    /// The event's `created_time` (formatting time if it is missing or unparseable).
    Event,
    /// The time the record is formatted.
    Sent,
}

/// TLS settings of the syslog destination.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM bundle to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key for mutual TLS (both or neither).
    pub client_auth: Option<(PathBuf, PathBuf)>,
    /// `tls_verify = false` turns off certificate and host name checks.
    pub verify: bool,
    /// The name the server certificate must match (default: `host`).
    pub server_name: String,
}

impl ConnectorConfig {
    /// The state directory by precedence: `--state-dir` > `[connector] state_dir` >
    /// `$STATE_DIRECTORY` > the directory holding the config file.
    pub fn resolve_state_dir(
        &self,
        cli: Option<&std::path::Path>,
        env_state_directory: Option<&std::ffi::OsStr>,
        config_path: &std::path::Path,
    ) -> PathBuf {
        if let Some(dir) = cli {
            return dir.to_path_buf();
        }
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        // systemd may pass several colon-separated directories; the first is ours.
        if let Some(env) = env_state_directory.and_then(|v| v.to_str())
            && let Some(first) = env.split(':').find(|s| !s.is_empty())
        {
            return PathBuf::from(first);
        }
        match config_path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_secret_is_read_again_from_its_file_by_the_loader_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let source = SecretSource::File(path.clone());
        let line_end: fn(&str) -> &str = crate::config::load::key_file_text;
        let err = source.read(line_end).unwrap_err();
        assert!(
            err.starts_with(&format!("cannot read {}", path.display())),
            "{err}"
        );
        std::fs::write(&path, "k1\n").unwrap();
        assert_eq!(source.read(line_end).unwrap(), Some(Secret::new("k1")));
        std::fs::write(&path, " k2 \r\n").unwrap();
        assert_eq!(source.read(str::trim).unwrap(), Some(Secret::new("k2")));
        std::fs::write(&path, "\n").unwrap();
        let err = source.read(line_end).unwrap_err();
        assert_eq!(err, format!("{} is empty", path.display()));
        assert!(!err.contains("k1"));
        assert_eq!(SecretSource::ConfigFile.read(line_end), Ok(None));
        let unset = SecretSource::Environment("MRAV2_TEST_SURELY_UNSET_VARIABLE".into());
        assert_eq!(unset.read(line_end), Ok(None));
        assert!(source.can_change() && !unset.can_change());
        assert_eq!(
            unset.to_string(),
            "environment variable MRAV2_TEST_SURELY_UNSET_VARIABLE"
        );
    }

    #[test]
    fn state_dir_precedence() {
        let c = ConnectorConfig {
            state_dir: Some("/from/file".into()),
            metrics_listen: None,
            commit_interval: Duration::from_secs(1),
        };
        let cfg = Path::new("/etc/conn/config.ini");
        let env = std::ffi::OsStr::new("/var/lib/x");
        assert_eq!(
            c.resolve_state_dir(Some(Path::new("/cli")), Some(env), cfg),
            PathBuf::from("/cli")
        );
        assert_eq!(
            c.resolve_state_dir(None, Some(env), cfg),
            PathBuf::from("/from/file")
        );
        let c = ConnectorConfig {
            state_dir: None,
            ..c
        };
        assert_eq!(
            c.resolve_state_dir(None, Some(env), cfg),
            PathBuf::from("/var/lib/x")
        );
        assert_eq!(
            c.resolve_state_dir(None, None, cfg),
            PathBuf::from("/etc/conn")
        );
        assert_eq!(
            c.resolve_state_dir(None, None, Path::new("config.ini")),
            PathBuf::from(".")
        );
    }
}
