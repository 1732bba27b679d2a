//! Unit tests of configuration validation: every default, every message (exact text),
//! precedence, inheritance, and no panic on any input.

use super::value::{parse_bool, parse_leef_delimiter};
use super::*;
use crate::config::{
    Config, Format, Framing, HeaderFormat, HeaderTime, Protocol, ProxyConfig, Secret, SecretSource,
};
use crate::event::EventType;
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const BASE: &str =
    "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n";

fn no_env(_: &str) -> Option<String> {
    None
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn ctx(env: &dyn Fn(&str) -> Option<String>) -> LoadContext<'_> {
    LoadContext {
        env,
        machine_hostname: "build box".to_string(),
        now: now(),
        file_mode: None,
        api_keys: ApiKeys::Read,
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_with(Path::new("config.ini"), text, &ctx(&no_env))
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |k: &str| map.get(k).cloned();
    load_with(Path::new("config.ini"), text, &ctx(&env))
}

fn ok(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("unexpected problems:\n{e}"))
}

fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

fn syslog(extra: &str) -> String {
    format!("{BASE}[syslog]\n{extra}\n")
}

/// One test per message: the text gives exactly this one problem.
macro_rules! problem {
    ($name:ident, $text:expr, $expected:expr) => {
        #[test]
        fn $name() {
            let text: String = $text.to_string();
            assert_eq!(problems(&text), [$expected.to_string()], "config:\n{text}");
        }
    };
}

/// One test per warning: the text loads and warns exactly this.
macro_rules! warning {
    ($name:ident, $text:expr, $expected:expr) => {
        #[test]
        fn $name() {
            let text: String = $text.to_string();
            let config = ok(&text);
            assert!(
                config.warnings.contains(&$expected.to_string()),
                "expected {:?} in {:#?}",
                $expected,
                config.warnings
            );
        }
    };
}

// --- defaults ------------------------------------------------------------------------

#[test]
fn minimal_file_gives_every_default() {
    let c = ok(BASE);
    assert_eq!(c.path, PathBuf::from("config.ini"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.tenants.len(), 1);
    let t = &c.tenants[0];
    assert_eq!(t.entity_name, "acme");
    assert_eq!(t.section, "lookout");
    assert_eq!(t.api_domain.as_str(), "https://api.lookout.com/");
    assert_eq!(t.api_base(), "https://api.lookout.com");
    assert_eq!(t.api_key.expose(), "k");
    assert_eq!(t.types, [EventType::Threat, EventType::Device]);
    assert_eq!(t.stream_position, None);
    assert_eq!(t.start_time, None);
    assert_eq!(t.sse_timeout, Duration::from_secs(15));
    assert_eq!(t.ca_file, None);
    assert_eq!(t.max_event_size, 16_777_216);
    let s = &t.syslog;
    assert_eq!(s.host, "localhost");
    assert_eq!(s.port, 514);
    assert_eq!(s.protocol, Protocol::Tcp);
    assert_eq!(s.framing, Framing::Lf);
    assert_eq!(s.format, Format::Leef { delimiter: '\t' });
    assert_eq!(s.header, HeaderFormat::Rfc3164);
    assert_eq!(s.facility, 1);
    assert_eq!(s.app_name, "lookout-mra");
    assert_eq!(s.header_time, HeaderTime::Event);
    assert_eq!(s.hostname, "build-box", "machine name, sanitised");
    assert_eq!(s.custom_identifier, None);
    assert_eq!(s.max_message_size, 65536);
    assert_eq!(s.tls.ca_file, None);
    assert_eq!(s.tls.client_auth, None);
    assert!(s.tls.verify);
    assert_eq!(s.tls.server_name, "localhost");
    assert_eq!(c.proxy, ProxyConfig::FromEnvironment);
    assert_eq!(c.connector.state_dir, None);
    assert_eq!(c.connector.metrics_listen, None);
    assert_eq!(c.connector.commit_interval, Duration::from_millis(1000));
}

#[test]
fn tls_defaults_port_6514_and_octet_counting() {
    let s = &ok(&syslog("protocol = tls\nhost = siem.example.com")).tenants[0].syslog;
    assert_eq!(
        (s.protocol, s.port, s.framing),
        (Protocol::Tls, 6514, Framing::OctetCounting)
    );
    assert_eq!(s.tls.server_name, "siem.example.com");
}

#[test]
fn relp_defaults_port_2514_and_a_window_of_128() {
    let s = &ok(&syslog("protocol = relp")).tenants[0].syslog;
    assert_eq!(
        (s.protocol, s.port, s.relp_window, s.max_message_size),
        (Protocol::Relp, 2514, 128, 65536)
    );
    let s = &ok(&syslog("protocol = RELP-TLS\nhost = siem.example.com")).tenants[0].syslog;
    assert_eq!(
        (s.protocol, s.port, s.relp_window),
        (Protocol::RelpTls, 2514, 128)
    );
    assert_eq!(s.tls.server_name, "siem.example.com");
    assert!(s.tls.verify);
    // The other protocols carry the default too, unused.
    assert_eq!(ok(&syslog("")).tenants[0].syslog.relp_window, 128);
}

#[test]
fn relp_window_bounds_and_tenant_override() {
    for (value, window) in [("1", 1), ("4096", 4096), ("512", 512)] {
        let s = &ok(&syslog(&format!("protocol = relp\nrelp_window = {value}"))).tenants[0].syslog;
        assert_eq!(s.relp_window, window);
    }
    let text = "[lookout]\napi_domain = https://x.example\napi_key = k\n\
                [lookout:a]\nsyslog_relp_window = 16\n[lookout:b]\n\
                [syslog]\nprotocol = relp-tls\nhost = siem.example\nrelp_window = 64\nport = 12514\n";
    let c = ok(text);
    let (a, b) = (&c.tenants[0].syslog, &c.tenants[1].syslog);
    assert_eq!(
        (a.relp_window, a.port, a.protocol),
        (16, 12514, Protocol::RelpTls)
    );
    assert_eq!(
        (b.relp_window, b.port, b.protocol),
        (64, 12514, Protocol::RelpTls)
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn relp_tls_uses_the_tls_keys_without_warnings() {
    let c = ok(&syslog(
        "protocol = relp-tls\nhost = 127.0.0.1\nca_file = /etc/ssl/ca.pem\n\
         cert_file = /etc/ssl/client.pem\nkey_file = /etc/ssl/client.key\ntls_server_name = siem.example",
    ));
    let s = &c.tenants[0].syslog;
    assert_eq!(s.tls.ca_file.as_deref(), Some(Path::new("/etc/ssl/ca.pem")));
    assert!(s.tls.client_auth.is_some());
    assert_eq!(s.tls.server_name, "siem.example");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        s.destination(),
        "relp-tls 127.0.0.1:2514 (window 128 records, server name siem.example, client certificate)"
    );
    let s = &ok(&syslog("protocol = relp\nhost = 10.0.0.5\nrelp_window = 8")).tenants[0].syslog;
    assert_eq!(s.destination(), "relp 10.0.0.5:2514 (window 8 records)");
}

#[test]
fn udp_defaults_to_1024_bytes() {
    let s = &ok(&syslog("protocol = udp")).tenants[0].syslog;
    assert_eq!(
        (s.protocol, s.port, s.max_message_size),
        (Protocol::Udp, 514, 1024)
    );
}

#[test]
fn use_udp_true_means_udp() {
    let s = &ok(&syslog("use_udp = true")).tenants[0].syslog;
    assert_eq!((s.protocol, s.max_message_size), (Protocol::Udp, 1024));
    let s = &ok(&syslog("use_udp = false")).tenants[0].syslog;
    assert_eq!(s.protocol, Protocol::Tcp);
    let s = &ok(&syslog("use_udp = yes\nprotocol = udp")).tenants[0].syslog;
    assert_eq!(s.protocol, Protocol::Udp);
    let s = &ok(&syslog("use_udp = false\nprotocol = tls\nhost = h")).tenants[0].syslog;
    assert_eq!(s.protocol, Protocol::Tls);
}

#[test]
fn every_value_can_be_set() {
    let text = format!(
        "{BASE}threat_enabled = no\ndevice_enabled = OFF\naudit_enabled = 1\nsmishing_enabled = True\n\
         stream_position = 01a1aac4-759e-7c9d-bf7a-861b26a9b1a3\nsse_timeout = 30\nca_file = /etc/ca.pem\n\
         max_event_size = 65536\n\
         [syslog]\nhost = 10.0.0.5\nport = 10514\nforwarder_type = Splunk\nprotocol = TLS\nframing = lf\n\
         syslog_format = rfc5424\nfacility = LOCAL4\napp_name = mra\nheader_time = sent\nhostname = conn-01\n\
         log_identifier_key = site_id\nlog_identifier = paris\nmax_message_size = 8192\nsplunk_format = kv\n\
         ca_file = /etc/syslog-ca.pem\ncert_file = /etc/c.pem\nkey_file = /etc/k.pem\ntls_verify = on\n\
         tls_server_name = siem.example.com\n\
         [proxy]\naddress = socks5://proxy:1080\nusername = bob\npassword = pw\nno_proxy = a.example, ,b.example\n\
         [connector]\nstate_dir = /var/lib/mrav2\nmetrics_listen = 127.0.0.1:9100\ncommit_interval_ms = 250\n"
    );
    let c = ok(&text);
    let t = &c.tenants[0];
    assert_eq!(t.types, [EventType::Audit, EventType::SmishingAlert]);
    assert_eq!(
        t.stream_position.as_ref().map(|p| p.as_str()),
        Some("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"),
        "known-failures 14: a uuid is a position"
    );
    assert_eq!(t.sse_timeout, Duration::from_secs(30));
    assert_eq!(t.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(t.max_event_size, 65536);
    let s = &t.syslog;
    assert_eq!((s.host.as_str(), s.port), ("10.0.0.5", 10514));
    assert_eq!((s.protocol, s.framing), (Protocol::Tls, Framing::Lf));
    assert_eq!(s.format, Format::SplunkKv);
    assert_eq!((s.header, s.facility), (HeaderFormat::Rfc5424, 20));
    assert_eq!(
        (s.app_name.as_str(), s.header_time),
        ("mra", HeaderTime::Sent)
    );
    assert_eq!(s.hostname, "conn-01");
    assert_eq!(
        s.custom_identifier,
        Some(("site_id".to_string(), "paris".to_string()))
    );
    assert_eq!(s.max_message_size, 8192);
    assert_eq!(s.tls.ca_file, Some(PathBuf::from("/etc/syslog-ca.pem")));
    assert_eq!(
        s.tls.client_auth,
        Some((PathBuf::from("/etc/c.pem"), PathBuf::from("/etc/k.pem")))
    );
    assert_eq!(s.tls.server_name, "siem.example.com");
    let ProxyConfig::Explicit(p) = &c.proxy else {
        panic!("explicit proxy expected")
    };
    assert_eq!(p.address.as_str(), "socks5://proxy:1080");
    assert_eq!(p.username.as_deref(), Some("bob"));
    assert_eq!(p.password.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(p.no_proxy, ["a.example", "b.example"]);
    assert_eq!(c.connector.state_dir, Some(PathBuf::from("/var/lib/mrav2")));
    assert_eq!(
        c.connector.metrics_listen,
        Some("127.0.0.1:9100".parse().unwrap())
    );
    assert_eq!(c.connector.commit_interval, Duration::from_millis(250));
}

#[test]
fn cef_and_ocsf_forwarder_types() {
    for (value, format) in [
        ("cef", Format::Cef),
        ("CEF", Format::Cef),
        ("ocsf", Format::Ocsf),
        ("Ocsf", Format::Ocsf),
    ] {
        let c = ok(&syslog(&format!("forwarder_type = {value}")));
        assert_eq!(c.tenants[0].syslog.format, format, "{value}");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}

#[test]
fn splunk_defaults_to_json() {
    let s = &ok(&syslog("forwarder_type = splunk")).tenants[0].syslog;
    assert_eq!(s.format, Format::SplunkJson);
}

#[test]
fn windows_paths_survive_unchanged() {
    let text = format!(
        "{BASE}ca_file = C:\\corp\\certs\\ca.pem\n[syslog]\nca_file = C:\\corp\\certs\\ca.pem\n[connector]\nstate_dir = D:\\mrav2\\state\n"
    );
    let c = ok(&text);
    assert_eq!(
        c.tenants[0].ca_file,
        Some(PathBuf::from(r"C:\corp\certs\ca.pem"))
    );
    assert_eq!(
        c.tenants[0].syslog.tls.ca_file,
        Some(PathBuf::from(r"C:\corp\certs\ca.pem"))
    );
    assert_eq!(
        c.connector.state_dir,
        Some(PathBuf::from(r"D:\mrav2\state"))
    );
}

#[test]
fn empty_values_mean_the_default() {
    let text = format!(
        "{BASE}start_time =\nstream_position =\n[syslog]\nport =\nhostname =\nlog_identifier_key =\nlog_identifier =\n[proxy]\naddress =\nusername =\npassword =\n"
    );
    let c = ok(&text);
    assert_eq!(c.tenants[0].syslog.port, 514);
    assert_eq!(c.tenants[0].syslog.hostname, "build-box");
    assert_eq!(c.proxy, ProxyConfig::FromEnvironment);
}

#[test]
fn empty_app_name_omits_the_tag() {
    assert_eq!(ok(&syslog("app_name =")).tenants[0].syslog.app_name, "");
}

#[test]
fn api_domain_loses_trailing_slashes() {
    let c = ok(
        "[lookout]\nentity_name = a\napi_domain = https://api.example.com/base//\napi_key = k\n",
    );
    assert_eq!(c.tenants[0].api_base(), "https://api.example.com/base");
    let c = ok("[lookout]\nentity_name = a\napi_domain = https://api.example.com/\napi_key = k\n");
    assert_eq!(c.tenants[0].api_base(), "https://api.example.com");
}

#[test]
fn facility_by_name_or_number() {
    for (v, n) in [
        ("kern", 0),
        ("User", 1),
        ("authpriv", 10),
        ("ntp", 12),
        ("local0", 16),
        ("LOCAL7", 23),
        ("13", 13),
        ("0", 0),
        ("23", 23),
    ] {
        assert_eq!(
            ok(&syslog(&format!("facility = {v}"))).tenants[0]
                .syslog
                .facility,
            n,
            "{v}"
        );
    }
}

#[test]
fn leef_delimiter_spellings() {
    for (v, c) in [
        ("|", '|'),
        ("^", '^'),
        ("0x7C", '|'),
        ("x7c", '|'),
        ("0x09", '\t'),
        ("\\t", '\t'),
        ("tab", '\t'),
        ("`", '`'),
        ("~", '~'),
        ("\"", '"'),
    ] {
        assert_eq!(
            ok(&syslog(&format!("leef_delimiter = {v}"))).tenants[0]
                .syslog
                .format,
            Format::Leef { delimiter: c },
            "{v}"
        );
    }
    for v in [
        "a", "7", "=", "\\", "0x20", "0x3D", "0x5C", "0x0A", "0x7F", "é", "||", "0x", "x+9",
    ] {
        assert_eq!(parse_leef_delimiter(v), None, "{v}");
    }
}

#[test]
fn booleans_accept_every_spelling() {
    for v in ["true", "TRUE", "yes", "On", "1"] {
        assert_eq!(parse_bool(v), Some(true), "{v}");
    }
    for v in ["false", "No", "OFF", "0"] {
        assert_eq!(parse_bool(v), Some(false), "{v}");
    }
    assert_eq!(parse_bool("y"), None);
}

#[test]
fn start_time_forms() {
    let utc = |s: &str| parse_timestamp(s).map(|(t, o)| (t.to_rfc3339(), o));
    let t = "2026-11-20T00:00:00+00:00".to_string();
    assert_eq!(utc("2026-11-20T00:00:00Z"), Some((t.clone(), true)));
    assert_eq!(utc("2026-11-20T01:30:00+01:30"), Some((t.clone(), true)));
    assert_eq!(utc("2026-11-19T19:00:00-0500"), Some((t.clone(), true)));
    assert_eq!(utc("2026-11-20T02:00:00+02"), Some((t.clone(), true)));
    assert_eq!(utc("2026-11-20 00:00:00"), Some((t.clone(), false)));
    assert_eq!(utc("2026-11-20"), Some((t.clone(), false)));
    assert_eq!(utc("2026-11-20T00:00"), Some((t.clone(), false)));
    assert_eq!(
        utc("2026-11-20T00:00:00.250Z").map(|x| x.0),
        Some("2026-11-20T00:00:00.250+00:00".to_string())
    );
    for bad in [
        "yesterday",
        "2026-13-01",
        "2026-11-20T25:00:00Z",
        "2026-11-20T00:00:00+2400",
        "20261120",
        "2026-11-20T00:00:00+0:0:0",
    ] {
        assert_eq!(utc(bad), None, "{bad}");
    }
}

#[test]
fn start_time_is_normalised_to_utc() {
    let c = ok(&format!("{BASE}start_time = 2026-11-20T01:00:00+01:00\n"));
    assert_eq!(
        c.tenants[0].start_time,
        Some(Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap())
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.tenants[0].start_description(),
        "start_time 2026-11-20T00:00:00+00:00"
    );
}

#[test]
fn old_start_time_is_kept() {
    let c = ok(&format!("{BASE}start_time = 2026-10-01T00:00:00Z\n"));
    assert_eq!(
        c.tenants[0].start_time,
        Some(Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap())
    );
}

#[test]
fn stream_position_zero_is_none() {
    assert_eq!(
        ok(&format!("{BASE}stream_position = 0\n")).tenants[0].stream_position,
        None
    );
}

#[test]
fn machine_hostname_is_sanitised() {
    assert_eq!(sanitize_hostname("my host\u{e9}"), "my-host-");
    assert_eq!(sanitize_hostname(""), "localhost");
    assert_eq!(sanitize_hostname(&"a".repeat(300)).len(), 255);
}

// --- HOSTNAME precedence -------------------------------------------------------------------

#[test]
fn hostname_key_beats_qradar_identifier() {
    let s = &ok(&syslog(
        "hostname = h1\nlog_identifier_key = qradarLogSourceIdentifier\nlog_identifier = lookout-mes",
    ))
    .tenants[0]
        .syslog;
    assert_eq!(s.hostname, "h1");
    assert_eq!(s.custom_identifier, None);
}

#[test]
fn qradar_identifier_beats_machine_name() {
    let s = &ok(&syslog(
        "log_identifier_key = qradarLogSourceIdentifier\nlog_identifier = lookout-mes",
    ))
    .tenants[0]
        .syslog;
    assert_eq!(s.hostname, "lookout-mes");
    assert_eq!(s.custom_identifier, None);
}

#[test]
fn qradar_key_without_identifier_uses_the_machine_name() {
    let s = &ok(&syslog("log_identifier_key = qradarLogSourceIdentifier")).tenants[0].syslog;
    assert_eq!(s.hostname, "build-box");
}

// --- API key precedence --------------------------------------------------------------------

#[test]
fn api_key_file_beats_environment_and_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "from-file\n").unwrap();
    let text = format!("{BASE}api_key_file = {}\n", file.display());
    let c = load_env(
        &text,
        &[
            ("MRAV2_API_KEY_ACME", "from-env"),
            ("MRAV2_API_KEY", "generic"),
        ],
    )
    .unwrap();
    assert_eq!(c.tenants[0].api_key.expose(), "from-file");
}

#[test]
fn api_key_file_strips_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "abc\r\n").unwrap();
    let text = format!(
        "[lookout]\nentity_name = a\napi_domain = https://x.example\napi_key_file = {}\n",
        file.display()
    );
    assert_eq!(ok(&text).tenants[0].api_key.expose(), "abc");
}

#[test]
fn named_environment_beats_generic_and_api_key() {
    let c = load_env(
        BASE,
        &[
            ("MRAV2_API_KEY_ACME", "from-env"),
            ("MRAV2_API_KEY", "generic"),
        ],
    )
    .unwrap();
    assert_eq!(c.tenants[0].api_key.expose(), "from-env");
}

#[test]
fn generic_environment_beats_api_key_for_one_tenant() {
    let c = load_env(BASE, &[("MRAV2_API_KEY", "generic")]).unwrap();
    assert_eq!(c.tenants[0].api_key.expose(), "generic");
    let c = load_env(BASE, &[("MRAV2_API_KEY", "")]).unwrap();
    assert_eq!(
        c.tenants[0].api_key.expose(),
        "k",
        "empty variable is unset"
    );
}

#[test]
fn environment_alone_is_enough() {
    let text = "[lookout]\nentity_name = acme-eu.prod\napi_domain = https://x.example\n";
    let c = load_env(text, &[("MRAV2_API_KEY_ACME_EU_PROD", "e")]).unwrap();
    assert_eq!(c.tenants[0].api_key.expose(), "e");
    assert_eq!(
        api_key_env_var("acme-eu.prod"),
        "MRAV2_API_KEY_ACME_EU_PROD"
    );
}

#[test]
fn generic_environment_is_ignored_with_two_tenants() {
    let text = "[lookout]\napi_domain = https://x.example\napi_key = shared\n[lookout:a]\n[lookout:b]\napi_key = own\n";
    let c = load_env(
        text,
        &[("MRAV2_API_KEY", "generic"), ("MRAV2_API_KEY_B", "b-env")],
    )
    .unwrap();
    assert_eq!(c.tenants[0].api_key.expose(), "shared");
    assert_eq!(c.tenants[1].api_key.expose(), "b-env");
    assert!(c.warnings.contains(&"config.ini: MRAV2_API_KEY is ignored because there is more than one tenant; use MRAV2_API_KEY_<NAME> per tenant".to_string()), "{:?}", c.warnings);
}

// --- tenants, inheritance, overrides ---------------------------------------------------------

#[test]
fn lookout_without_entity_name_only_gives_defaults() {
    let text = "[lookout]\napi_domain = https://api.lookout.com\napi_key = shared\naudit_enabled = true\n\
                [lookout:acme]\n[lookout:globex]\nentity_name = globex-prod\napi_key = g\nthreat_enabled = false\n\
                api_domain = https://eu.lookout.com/\n";
    let c = ok(text);
    let names: Vec<_> = c
        .tenants
        .iter()
        .map(|t| (t.entity_name.as_str(), t.section.as_str()))
        .collect();
    assert_eq!(
        names,
        [("acme", "lookout:acme"), ("globex-prod", "lookout:globex")]
    );
    assert_eq!(c.tenants[0].api_key.expose(), "shared");
    assert_eq!(c.tenants[0].api_base(), "https://api.lookout.com");
    assert_eq!(
        c.tenants[0].types,
        [EventType::Threat, EventType::Device, EventType::Audit]
    );
    assert_eq!(c.tenants[1].api_key.expose(), "g");
    assert_eq!(c.tenants[1].api_base(), "https://eu.lookout.com");
    assert_eq!(c.tenants[1].types, [EventType::Device, EventType::Audit]);
}

#[test]
fn lookout_with_entity_name_is_a_tenant_too_and_comes_first() {
    let text = "[lookout:b]\n[lookout]\nentity_name = a\napi_domain = https://x.example\napi_key = k\nstream_position = 0192\n";
    let c = ok(text);
    let names: Vec<_> = c.tenants.iter().map(|t| t.entity_name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        c.tenants[0].stream_position.as_ref().map(|p| p.as_str()),
        Some("0192")
    );
    assert_eq!(
        c.tenants[1].stream_position, None,
        "a position is never inherited"
    );
}

#[test]
fn syslog_overrides_per_tenant() {
    let text = "[lookout]\napi_domain = https://x.example\napi_key = k\nsyslog_port = 2000\n\
                [lookout:a]\nsyslog_host = a.siem\nsyslog_format = rfc5424\nsyslog_app_name =\n\
                [lookout:b]\nsyslog_port = 3000\nsyslog_forwarder_type = splunk\nsyslog_syslog_format = rfc3164\n\
                [syslog]\nhost = shared.siem\nport = 1000\nsyslog_format = rfc5424\napp_name = x\n";
    let c = ok(text);
    let (a, b) = (&c.tenants[0].syslog, &c.tenants[1].syslog);
    assert_eq!(
        (a.host.as_str(), a.port, a.header, a.app_name.as_str()),
        ("a.siem", 2000, HeaderFormat::Rfc5424, "")
    );
    assert_eq!(a.format, Format::Leef { delimiter: '\t' });
    assert_eq!(
        (b.host.as_str(), b.port, b.header, b.app_name.as_str()),
        ("shared.siem", 3000, HeaderFormat::Rfc3164, "x")
    );
    assert_eq!(b.format, Format::SplunkJson);
}

#[test]
fn a_problem_in_a_shared_section_is_reported_once() {
    let text = "[lookout]\napi_domain = https://x.example\napi_key = k\n[lookout:a]\n[lookout:b]\n[syslog]\nport = 0\n";
    assert_eq!(
        problems(text),
        ["config.ini: [syslog] port = \"0\": not a port; expected a number from 1 to 65535"]
    );
}

#[test]
fn keys_are_case_insensitive() {
    let c = ok("[lookout]\nEntity_Name = a\nAPI_DOMAIN = https://x.example\nApi_Key = k\n");
    assert_eq!(c.tenants[0].entity_name, "a");
}

#[test]
fn proxy_credentials_in_the_url() {
    let c = ok(&format!(
        "{BASE}[proxy]\naddress = http://bob:p%40ss@proxy.corp:3128\n"
    ));
    let ProxyConfig::Explicit(p) = &c.proxy else {
        panic!("explicit proxy expected")
    };
    assert_eq!(p.address.as_str(), "http://proxy.corp:3128/");
    assert_eq!(p.username.as_deref(), Some("bob"));
    assert_eq!(p.password.as_ref().map(Secret::expose), Some("p@ss"));
}

#[test]
fn secrets_never_appear_in_problems_warnings_or_debug() {
    let text = "[lookout]\nentity_name = a\napi_domain = http://x.example\napi_key = sekrit-1\napikey = sekrit-2\n\
                [proxy]\naddress = ftp://u:sekrit-3@p\npassword = sekrit-4\n";
    let e = load(text).unwrap_err().to_string();
    assert!(!e.contains("sekrit"), "{e}");
    assert!(e.contains("ftp://u:***@p"), "{e}");
    let c = ok(
        "[lookout]\nentity_name = a\napi_domain = http://x.example\napi_key = sekrit-1\n[proxy]\naddress = http://u:sekrit-3@p\n",
    );
    let all = format!("{:?} {:?}", c.warnings, c);
    assert!(!all.contains("sekrit"), "{all}");
}

#[test]
fn every_problem_is_collected() {
    let text = "[lookout]\nentity_name = bad name\napi_domain = ftp://x\nthreat_enabled = maybe\n\
                [syslog]\nport = x\nprotocol = tpc\nfacility = 99\n[proxy]\naddress = nowhere\n[connector]\ncommit_interval_ms = 0\n[extra]\n";
    assert_eq!(problems(text).len(), 10, "{:#?}", problems(text));
}

#[test]
fn syslog_problems_are_all_collected() {
    let text = syslog(
        "forwarder_type = splunkk\nleef_delimiter = a\nhostname = a b\nlog_identifier_key = qradarLogSourceIdentifier\n\
         log_identifier = c d\nfacility = x\nmax_message_size = 1\ncert_file = /c\ntls_verify = x\nprotocol = x\nport = x",
    );
    let keys: Vec<String> = load(&text)
        .unwrap_err()
        .problems
        .into_iter()
        .filter_map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "protocol",
            "port",
            "leef_delimiter",
            "forwarder_type",
            "facility",
            "hostname",
            "log_identifier",
            "max_message_size",
            "cert_file",
            "tls_verify"
        ]
    );
}

#[test]
fn problems_carry_structured_fields() {
    let e = load(&syslog("port = x")).unwrap_err();
    assert_eq!(
        e.problems,
        [Problem {
            file: PathBuf::from("config.ini"),
            section: Some("syslog".into()),
            key: Some("port".into()),
            value: Some("x".into()),
            message: "not a port; expected a number from 1 to 65535".into(),
        }]
    );
}

#[test]
fn config_error_prints_one_problem_per_line() {
    let e = load("[lookout]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.ini: [lookout] entity_name: missing; set entity_name to the tenant's name (use letters, digits, '.', '_' and '-')\n\
         config.ini: [lookout] api_domain: missing; set api_domain to the api base url, e.g. https://api.lookout.com\n\
         config.ini: [lookout] api_key: missing; set api_key, api_key_file or MRAV2_API_KEY"
    );
}

#[test]
fn known_failures_37_three_problems_each_naming_its_key() {
    let text = "[lookout]\nentity_name = a\napi_domain = https://x.example\nthreat_enabled = false\ndevice_enabled = false\n\
                audit_enabled = false\nsmishing_enabled = false\n[syslog]\nport = 99999\n";
    assert_eq!(
        problems(text),
        [
            "config.ini: [lookout] api_key: missing; set api_key, api_key_file or MRAV2_API_KEY",
            "config.ini: [lookout]: threat_enabled, device_enabled, audit_enabled and smishing_enabled are all false; enable at least one event type",
            "config.ini: [syslog] port = \"99999\": not a port; expected a number from 1 to 65535",
        ]
    );
}

#[test]
fn permission_warning_names_the_file() {
    let c = load_with(
        Path::new("/etc/mrav2/config.ini"),
        BASE,
        &LoadContext {
            file_mode: Some(0o100644),
            ..ctx(&no_env)
        },
    )
    .unwrap();
    assert_eq!(
        c.warnings,
        [
            "/etc/mrav2/config.ini: holds an api_key and is readable by group or others (mode 644); run chmod 600 /etc/mrav2/config.ini, or move the key to api_key_file"
        ]
    );
    let c = load_with(
        Path::new("c.ini"),
        BASE,
        &LoadContext {
            file_mode: Some(0o100600),
            ..ctx(&no_env)
        },
    )
    .unwrap();
    assert!(c.warnings.is_empty());
    let no_key = "[lookout]\nentity_name = a\napi_domain = https://x.example\n";
    let env = |k: &str| (k == "MRAV2_API_KEY").then(|| "e".to_string());
    let c = load_with(
        Path::new("c.ini"),
        no_key,
        &LoadContext {
            file_mode: Some(0o100644),
            ..ctx(&env)
        },
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "no key in the file, no warning");
}

#[test]
fn without_reading_keys_neither_a_missing_nor_an_unreadable_key_is_a_problem() {
    // What `status` loads: under systemd `api_key_file` names a credential that only
    // the service can read.
    let skip = LoadContext {
        api_keys: ApiKeys::Skip,
        ..ctx(&no_env)
    };
    let unreadable = "[lookout]\nentity_name = a\napi_domain = https://x.example\n\
                      api_key_file = /run/credentials/none.service/api-key\n";
    let missing = "[lookout]\nentity_name = a\napi_domain = https://x.example\n";
    for text in [unreadable, missing] {
        let c = load_with(Path::new("config.ini"), text, &skip).unwrap();
        assert_eq!(c.tenants[0].api_key.expose(), "", "{text}");
        assert_eq!(c.tenants[0].entity_name, "a");
        // Read as `run` and `check-config` read it, each is a problem.
        let e = load(text).unwrap_err();
        assert!(e.to_string().contains("api_key"), "{e}");
    }
    // Everything else is still checked.
    let e = load_with(
        Path::new("config.ini"),
        &format!("{missing}syslog_port = 0\n"),
        &skip,
    )
    .unwrap_err();
    assert!(e.to_string().contains("syslog_port"), "{e}");
}

#[test]
fn load_file_reports_an_unreadable_file() {
    let e = load_file(Path::new("/nonexistent/config.ini"), ApiKeys::Read).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/config.ini: cannot read the file: no such file; check the path given to --config"
    );
}

#[cfg(unix)]
#[test]
fn load_file_warns_about_a_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.ini");
    std::fs::write(&path, BASE).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let c = load_file(&path, ApiKeys::Read).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("chmod 600"), "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with(&path.display().to_string()));
}

// --- problems: one test per message ------------------------------------------------------

problem!(
    unknown_section,
    format!("{BASE}[sylog]\n"),
    "config.ini: [sylog]: unknown section; expected [lookout], [lookout:NAME], [syslog], [destination:NAME], [proxy] or [connector]"
);
problem!(
    unknown_key,
    syslog("prot = udp"),
    "config.ini: [syslog] prot = \"udp\": unknown key; accepted keys are host, port, forwarder_type, protocol, use_udp, framing, syslog_format, facility, app_name, header_time, hostname, log_identifier_key, log_identifier, max_message_size, leef_delimiter, splunk_format, ca_file, cert_file, key_file, tls_verify, tls_server_name, relp_window, max_events_per_second"
);
problem!(
    unknown_tenant_key,
    format!("{BASE}syslog_hots = x\n"),
    "config.ini: [lookout] syslog_hots = \"x\": unknown key; accepted keys are entity_name, api_domain, api_key, api_key_file, threat_enabled, device_enabled, audit_enabled, smishing_enabled, stream_position, start_time, sse_timeout, ca_file, max_event_size, destinations and the [syslog] keys prefixed with syslog_ (e.g. syslog_host)"
);
problem!(
    unknown_secret_looking_key_hides_value,
    format!("{BASE}apikey = sekrit\n"),
    "config.ini: [lookout] apikey = \"***\": unknown key; accepted keys are entity_name, api_domain, api_key, api_key_file, threat_enabled, device_enabled, audit_enabled, smishing_enabled, stream_position, start_time, sse_timeout, ca_file, max_event_size, destinations and the [syslog] keys prefixed with syslog_ (e.g. syslog_host)"
);
problem!(
    syslog_format_twice,
    format!("{BASE}syslog_format = rfc5424\nsyslog_syslog_format = rfc5424\n"),
    "config.ini: [lookout] syslog_syslog_format: set together with syslog_format, which means the same; keep one"
);
problem!(
    no_tenant,
    "[syslog]\n",
    "config.ini: [lookout]: missing; add a [lookout] section (or [lookout:NAME] sections) with entity_name, api_domain and api_key"
);
problem!(
    entity_name_missing,
    "[lookout]\napi_domain = https://x.example\napi_key = k\n",
    "config.ini: [lookout] entity_name: missing; set entity_name to the tenant's name (use letters, digits, '.', '_' and '-')"
);
problem!(
    entity_name_invalid,
    "[lookout]\nentity_name = acme corp\napi_domain = https://x.example\napi_key = k\n",
    "config.ini: [lookout] entity_name = \"acme corp\": not usable as a file name; use letters, digits, '.', '_' and '-'"
);
problem!(
    tenant_section_name_invalid,
    "[lookout]\napi_domain = https://x.example\napi_key = k\n[lookout:a/b]\n",
    "config.ini: [lookout:a/b]: tenant name \"a/b\" is not usable as a file name; use letters, digits, '.', '_' and '-'"
);
problem!(
    entity_name_duplicate,
    "[lookout]\napi_domain = https://x.example\napi_key = k\n[lookout:acme]\n[lookout:other]\nentity_name = ACME\n",
    "config.ini: [lookout:other] entity_name = \"ACME\": already used by [lookout:acme]; entity names must be unique ignoring letter case and treating '.', '-' and '_' alike (they name state files and MRAV2_API_KEY_<NAME> variables)"
);
problem!(
    entity_name_duplicate_by_section,
    "[lookout]\napi_domain = https://x.example\napi_key = k\n[lookout:a.b]\n[lookout:a_b]\n",
    "config.ini: [lookout:a_b]: already used by [lookout:a.b]; entity names must be unique ignoring letter case and treating '.', '-' and '_' alike (they name state files and MRAV2_API_KEY_<NAME> variables)"
);
problem!(
    api_domain_missing,
    "[lookout]\nentity_name = a\napi_key = k\n",
    "config.ini: [lookout] api_domain: missing; set api_domain to the api base url, e.g. https://api.lookout.com"
);
problem!(
    api_domain_not_http,
    "[lookout]\nentity_name = a\napi_domain = api.lookout.com\napi_key = k\n",
    "config.ini: [lookout] api_domain = \"api.lookout.com\": not an http or https url; expected e.g. https://api.lookout.com"
);
problem!(
    api_domain_query,
    "[lookout]\nentity_name = a\napi_domain = https://api.lookout.com/?x=1\napi_key = k\n",
    "config.ini: [lookout] api_domain = \"https://api.lookout.com/?x=1\": has a query or fragment; expected a base url such as https://api.lookout.com"
);
problem!(
    api_key_missing,
    "[lookout]\nentity_name = a\napi_domain = https://x.example\n",
    "config.ini: [lookout] api_key: missing; set api_key, api_key_file or MRAV2_API_KEY"
);
problem!(
    api_key_missing_multi,
    "[lookout]\napi_domain = https://x.example\n[lookout:acme-eu]\n[lookout:b]\napi_key = k\n",
    "config.ini: [lookout:acme-eu] api_key: missing; set api_key, api_key_file or MRAV2_API_KEY_ACME_EU"
);
problem!(
    api_key_file_unreadable,
    "[lookout]\nentity_name = a\napi_domain = https://x.example\napi_key_file = /nonexistent/key\n",
    "config.ini: [lookout] api_key_file = \"/nonexistent/key\": cannot read it: no such file; make the file readable by the connector's user"
);
#[test]
fn api_key_file_empty() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "\n").unwrap();
    let text = format!(
        "[lookout]\nentity_name = a\napi_domain = https://x.example\napi_key_file = {}\n",
        file.display()
    );
    assert_eq!(
        problems(&text),
        [format!(
            "config.ini: [lookout] api_key_file = \"{}\": the file is empty; put the application key in it",
            file.display()
        )]
    );
}
problem!(
    bool_invalid,
    format!("{BASE}audit_enabled = maybe\n"),
    "config.ini: [lookout] audit_enabled = \"maybe\": not a boolean; expected true, false, yes, no, on, off, 1 or 0"
);
problem!(
    all_types_disabled,
    format!("{BASE}threat_enabled = false\ndevice_enabled = 0\n"),
    "config.ini: [lookout]: threat_enabled, device_enabled, audit_enabled and smishing_enabled are all false; enable at least one event type"
);
problem!(
    stream_position_invalid,
    format!("{BASE}stream_position = 01a1 aac4\n"),
    "config.ini: [lookout] stream_position = \"01a1 aac4\": not an event id; expected 0 or an event id such as 01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"
);
problem!(
    start_time_invalid,
    format!("{BASE}start_time = yesterday\n"),
    "config.ini: [lookout] start_time = \"yesterday\": not an iso-8601 time; expected e.g. 2026-11-20T00:00:00Z"
);
problem!(
    sse_timeout_invalid,
    format!("{BASE}sse_timeout = 0\n"),
    "config.ini: [lookout] sse_timeout = \"0\": not a number of seconds from 1 to 3600"
);
problem!(
    max_event_size_invalid,
    format!("{BASE}max_event_size = 1024\n"),
    "config.ini: [lookout] max_event_size = \"1024\": not a size from 65536 to 1073741824 bytes"
);
problem!(
    host_invalid,
    syslog("host = siem example"),
    "config.ini: [syslog] host = \"siem example\": not a host name or address; expected e.g. siem.example.com, 10.0.0.5 or ::1"
);
problem!(
    port_invalid,
    syslog("port = 99999"),
    "config.ini: [syslog] port = \"99999\": not a port; expected a number from 1 to 65535"
);
problem!(
    forwarder_type_invalid,
    syslog("forwarder_type = splunkk"),
    "config.ini: [syslog] forwarder_type = \"splunkk\": unknown forwarder type; expected qradar, splunk, cef or ocsf"
);
problem!(
    relp_window_zero,
    syslog("protocol = relp\nrelp_window = 0"),
    "config.ini: [syslog] relp_window = \"0\": not a relp window; expected a number of records from 1 to 4096"
);

problem!(
    relp_window_too_large,
    syslog("protocol = relp\nrelp_window = 4097"),
    "config.ini: [syslog] relp_window = \"4097\": not a relp window; expected a number of records from 1 to 4096"
);

#[test]
fn max_events_per_second_defaults_to_no_limit_and_follows_tenant_overrides() {
    let c = ok(&syslog(""));
    assert_eq!(c.tenants[0].syslog.max_events_per_second, 0);
    assert_eq!(c.tenants[0].destinations[0].max_events_per_second(), 0);
    let c = ok(&syslog("max_events_per_second = 500"));
    assert_eq!(c.tenants[0].destinations[0].max_events_per_second(), 500);
    let text = "[lookout]\napi_domain = https://x.example\napi_key = k\n\
                [lookout:a]\nsyslog_max_events_per_second = 0\n[lookout:b]\n\
                [lookout:c]\nsyslog_max_events_per_second = 10000000\n\
                [syslog]\nmax_events_per_second = 2000\n";
    let c = ok(text);
    let rates: Vec<u32> = c
        .tenants
        .iter()
        .map(|t| t.destinations[0].max_events_per_second())
        .collect();
    assert_eq!(rates, [0, 2000, 10_000_000]);
    let h = ok(&hec("max_events_per_second = 750"));
    assert_eq!(only_hec(&h).max_events_per_second, 750);
    assert_eq!(h.tenants[0].destinations[0].max_events_per_second(), 750);
    assert_eq!(only_hec(&ok(&hec(""))).max_events_per_second, 0);
}

#[test]
fn max_events_per_second_must_be_a_whole_number_in_range() {
    let msg = "not a rate; expected a whole number of events per second from 1 to 10000000, or 0 for no limit";
    for value in ["-5", "fast", "1.5", "10000001", "1e3"] {
        assert_eq!(
            problems(&syslog(&format!("max_events_per_second = {value}"))),
            [format!(
                "config.ini: [syslog] max_events_per_second = \"{value}\": {msg}"
            )]
        );
    }
    assert_eq!(
        problems(&hec("max_events_per_second = -1")),
        [format!(
            "config.ini: [destination:splunk] max_events_per_second = \"-1\": {msg}"
        )]
    );
    let text = "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\nsyslog_max_events_per_second = lots\n";
    assert_eq!(
        problems(text),
        [format!(
            "config.ini: [lookout] syslog_max_events_per_second = \"lots\": {msg}"
        )]
    );
}

#[test]
fn the_key_source_is_remembered_for_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "from-file\n").unwrap();
    let base =
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = inline\n";
    let source = |c: Config| c.tenants[0].api_key_source.clone();
    assert_eq!(source(ok(base)), SecretSource::ConfigFile);
    assert_eq!(
        source(load_env(base, &[("MRAV2_API_KEY", "k")]).unwrap()),
        SecretSource::Environment("MRAV2_API_KEY".into())
    );
    assert_eq!(
        source(load_env(base, &[("MRAV2_API_KEY_ACME", "k")]).unwrap()),
        SecretSource::Environment("MRAV2_API_KEY_ACME".into())
    );
    let with_file = format!("{base}api_key_file = {}\n", file.display());
    assert_eq!(source(ok(&with_file)), SecretSource::File(file.clone()));
    let h = ok(&hec(&format!("token_file = {}", file.display())));
    assert_eq!(only_hec(&h).token_source, SecretSource::File(file));
    assert_eq!(
        only_hec(&ok(&hec(""))).token_source,
        SecretSource::ConfigFile
    );
}

problem!(
    relp_window_not_a_number,
    "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\nsyslog_relp_window = many\n[syslog]\nprotocol = relp\n",
    "config.ini: [lookout] syslog_relp_window = \"many\": not a relp window; expected a number of records from 1 to 4096"
);

problem!(
    relp_tls_host_not_a_server_name,
    syslog("protocol = relp-tls\nhost = a..b"),
    "config.ini: [syslog] host = \"a..b\": not usable as a tls server name; set tls_server_name"
);

warning!(
    framing_is_ignored_with_relp,
    syslog("protocol = relp\nframing = octet-counting"),
    "config.ini: [syslog] framing = \"octet-counting\": ignored with protocol relp (framing applies to tcp and tls)"
);

warning!(
    relp_window_is_ignored_with_tcp,
    syslog("protocol = tcp\nrelp_window = 10"),
    "config.ini: [syslog] relp_window = \"10\": ignored because protocol is not relp or relp-tls"
);

warning!(
    tls_keys_are_ignored_with_plain_relp,
    syslog("protocol = relp\nca_file = /etc/ssl/ca.pem"),
    "config.ini: [syslog] ca_file = \"/etc/ssl/ca.pem\": ignored because protocol is not tls or relp-tls"
);

warning!(
    relp_tls_without_verification_warns,
    syslog("protocol = relp-tls\nhost = h\ntls_verify = false"),
    "config.ini: [syslog] tls_verify = \"false\": certificate and host name checks are off; anyone on the network path can read and alter the records"
);

problem!(
    protocol_invalid,
    syslog("protocol = tpc"),
    "config.ini: [syslog] protocol = \"tpc\": unknown protocol; expected udp, tcp, tls, relp, relp-tls or stdout"
);
problem!(
    use_udp_invalid,
    syslog("use_udp = sometimes"),
    "config.ini: [syslog] use_udp = \"sometimes\": not a boolean; expected true, false, yes, no, on, off, 1 or 0"
);
problem!(
    use_udp_conflicts,
    syslog("protocol = tcp\nuse_udp = true"),
    "config.ini: [syslog] use_udp = \"true\": conflicts with protocol = \"tcp\"; remove use_udp (protocol replaces it)"
);
problem!(
    use_udp_false_conflicts_with_udp,
    syslog("protocol = udp\nuse_udp = false"),
    "config.ini: [syslog] use_udp = \"false\": conflicts with protocol = \"udp\"; remove use_udp (protocol replaces it)"
);
problem!(
    framing_invalid,
    syslog("framing = nul"),
    "config.ini: [syslog] framing = \"nul\": unknown framing; expected lf or octet-counting"
);
problem!(
    syslog_format_invalid,
    syslog("syslog_format = rfc5425"),
    "config.ini: [syslog] syslog_format = \"rfc5425\": unknown syslog format; expected rfc3164 or rfc5424"
);
problem!(
    facility_invalid,
    syslog("facility = 24"),
    "config.ini: [syslog] facility = \"24\": unknown facility; expected a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, local0 to local7) or a number from 0 to 23"
);
problem!(
    app_name_invalid,
    syslog("app_name = lookout mra"),
    "config.ini: [syslog] app_name = \"lookout mra\": not a valid app name; expected 1 to 32 of A-Z a-z 0-9 . _ - (or empty to omit the tag)"
);
problem!(
    app_name_too_long,
    syslog(&format!("app_name = {}", "a".repeat(33))),
    format!(
        "config.ini: [syslog] app_name = \"{}\": not a valid app name; expected 1 to 32 of A-Z a-z 0-9 . _ - (or empty to omit the tag)",
        "a".repeat(33)
    )
);
problem!(
    header_time_invalid,
    syslog("header_time = now"),
    "config.ini: [syslog] header_time = \"now\": unknown header time; expected event or sent"
);
problem!(
    hostname_invalid,
    syslog("hostname = my host"),
    "config.ini: [syslog] hostname = \"my host\": not a valid hostname; expected 1 to 255 printable ascii characters without spaces"
);
problem!(
    qradar_identifier_invalid,
    syslog("log_identifier_key = qradarLogSourceIdentifier\nlog_identifier = lookout mes"),
    "config.ini: [syslog] log_identifier = \"lookout mes\": not a valid hostname (with log_identifier_key = qradarLogSourceIdentifier it becomes the record's HOSTNAME); expected 1 to 255 printable ascii characters without spaces"
);
problem!(
    custom_identifier_key_invalid,
    syslog("log_identifier_key = site-id\nlog_identifier = x"),
    "config.ini: [syslog] log_identifier_key = \"site-id\": not a valid attribute key; expected qradarLogSourceIdentifier or letters, digits and _"
);
problem!(
    max_message_size_udp,
    syslog("protocol = udp\nmax_message_size = 65508"),
    "config.ini: [syslog] max_message_size = \"65508\": not a record size for udp; expected a number of bytes from 480 to 65507"
);
problem!(
    max_message_size_tcp,
    syslog("max_message_size = 479"),
    "config.ini: [syslog] max_message_size = \"479\": not a record size; expected a number of bytes from 480 to 16777216"
);
problem!(
    leef_delimiter_invalid,
    syslog("leef_delimiter = ="),
    "config.ini: [syslog] leef_delimiter = \"=\": not a valid leef delimiter; expected tab (the default), one ascii punctuation character other than = and \\, or its code as 0xHH"
);
problem!(
    splunk_format_invalid,
    syslog("splunk_format = xml"),
    "config.ini: [syslog] splunk_format = \"xml\": unknown splunk format; expected json or kv"
);
problem!(
    cert_without_key,
    syslog("cert_file = /c.pem"),
    "config.ini: [syslog] cert_file = \"/c.pem\": set without key_file; set both cert_file and key_file for mutual tls, or neither"
);
problem!(
    key_without_cert,
    syslog("key_file = /k.pem"),
    "config.ini: [syslog] key_file = \"/k.pem\": set without cert_file; set both cert_file and key_file for mutual tls, or neither"
);
problem!(
    tls_verify_invalid,
    syslog("tls_verify = nope"),
    "config.ini: [syslog] tls_verify = \"nope\": not a boolean; expected true, false, yes, no, on, off, 1 or 0"
);
problem!(
    tls_server_name_invalid,
    syslog("protocol = tls\ntls_server_name = a..b"),
    "config.ini: [syslog] tls_server_name = \"a..b\": not a valid tls server name; expected a dns name or ip address"
);
problem!(
    tls_host_not_a_server_name,
    syslog("protocol = tls\nhost = a..b"),
    "config.ini: [syslog] host = \"a..b\": not usable as a tls server name; set tls_server_name"
);
problem!(
    proxy_address_invalid,
    format!("{BASE}[proxy]\naddress = proxy.corp:3128\n"),
    "config.ini: [proxy] address = \"proxy.corp:3128\": not a proxy url; expected http://host:port, https://host:port or socks5://host:port"
);
problem!(
    proxy_credentials_twice,
    format!("{BASE}[proxy]\naddress = http://u:p@proxy:3128\nusername = v\n"),
    "config.ini: [proxy] username = \"v\": the address already holds credentials; give them in the address or in username and password, not both"
);
problem!(
    proxy_username_without_address,
    format!("{BASE}[proxy]\nusername = v\n"),
    "config.ini: [proxy] username = \"v\": set but address is empty; set address or remove it"
);
problem!(
    proxy_password_without_username,
    format!("{BASE}[proxy]\naddress = http://proxy:3128\npassword = pw\n"),
    "config.ini: [proxy] password = \"***\": set without username; set both or neither"
);
problem!(
    metrics_listen_invalid,
    format!("{BASE}[connector]\nmetrics_listen = localhost\n"),
    "config.ini: [connector] metrics_listen = \"localhost\": not an address and port; expected e.g. 127.0.0.1:9100 or [::1]:9100"
);
problem!(
    commit_interval_invalid,
    format!("{BASE}[connector]\ncommit_interval_ms = 0\n"),
    "config.ini: [connector] commit_interval_ms = \"0\": not a number of milliseconds from 1 to 3600000"
);
problem!(
    control_characters_are_escaped,
    syslog("host = a\u{1b}b"),
    "config.ini: [syslog] host = \"a\\u{1b}b\": not a host name or address; expected e.g. siem.example.com, 10.0.0.5 or ::1"
);

// --- warnings: one test per message -------------------------------------------------------

warning!(
    warn_http_api,
    "[lookout]\nentity_name = a\napi_domain = http://127.0.0.1:8080\napi_key = k\n",
    "config.ini: [lookout] api_domain = \"http://127.0.0.1:8080\": plain http sends the application key and tokens unencrypted; use https outside tests and simulators"
);
warning!(
    warn_start_time_without_offset,
    format!("{BASE}start_time = 2026-11-20T00:00:00\n"),
    "config.ini: [lookout] start_time = \"2026-11-20T00:00:00\": no utc offset; taken as utc"
);
warning!(
    warn_start_time_old,
    format!("{BASE}start_time = 2026-10-23T00:00:00Z\n"),
    "config.ini: [lookout] start_time = \"2026-10-23T00:00:00Z\": more than 10 days in the past; the stream keeps about 10 days of events, so older ones may not be replayed (sent unchanged)"
);
warning!(
    warn_start_time_ignored,
    format!("{BASE}start_time = 2026-11-20T00:00:00Z\nstream_position = abc\n"),
    "config.ini: [lookout] start_time = \"2026-11-20T00:00:00Z\": ignored because stream_position is set (start_time applies only when stream_position is 0)"
);
warning!(
    warn_short_sse_timeout,
    format!("{BASE}sse_timeout = 5\n"),
    "config.ini: [lookout] sse_timeout = \"5\": shorter than two heartbeat intervals (5 s each); a healthy stream may be re-opened"
);
warning!(
    warn_stream_position_not_inherited,
    "[lookout]\napi_domain = https://x.example\napi_key = k\nstream_position = abc\n[lookout:a]\n",
    "config.ini: [lookout] stream_position = \"abc\": not inherited by [lookout:NAME] sections (a position belongs to one tenant's stream); ignored"
);
warning!(
    warn_identifier_without_key,
    syslog("log_identifier = x"),
    "config.ini: [syslog] log_identifier = \"x\": ignored because log_identifier_key is empty"
);
warning!(
    warn_tls_verify_off,
    syslog("protocol = tls\nhost = h\ntls_verify = false"),
    "config.ini: [syslog] tls_verify = \"false\": certificate and host name checks are off; anyone on the network path can read and alter the records"
);

warning!(
    warn_framing_ignored,
    syslog("protocol = udp\nframing = lf"),
    "config.ini: [syslog] framing = \"lf\": ignored with protocol udp (framing applies to tcp and tls)"
);
warning!(
    warn_tls_key_ignored,
    syslog("tls_server_name = siem.example.com"),
    "config.ini: [syslog] tls_server_name = \"siem.example.com\": ignored because protocol is not tls or relp-tls"
);
warning!(
    warn_leef_delimiter_ignored,
    syslog("forwarder_type = splunk\nleef_delimiter = |"),
    "config.ini: [syslog] leef_delimiter = \"|\": ignored because forwarder_type is splunk"
);
warning!(
    warn_leef_delimiter_ignored_by_cef,
    syslog("forwarder_type = cef\nleef_delimiter = |"),
    "config.ini: [syslog] leef_delimiter = \"|\": ignored because forwarder_type is cef"
);
warning!(
    warn_splunk_format_ignored_by_ocsf,
    syslog("forwarder_type = ocsf\nsplunk_format = kv"),
    "config.ini: [syslog] splunk_format = \"kv\": ignored because forwarder_type is ocsf"
);
warning!(
    warn_splunk_format_ignored,
    syslog("splunk_format = kv"),
    "config.ini: [syslog] splunk_format = \"kv\": ignored because forwarder_type is qradar"
);

#[test]
fn recent_start_time_does_not_warn() {
    let c = ok(&format!("{BASE}start_time = 2026-11-13T00:00:00Z\n"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

// --- never panics -------------------------------------------------------------------------

proptest! {
    #[test]
    fn any_text_loads_without_panic(text in "\\PC*") {
        let _ = load(&text);
    }

    #[test]
    fn any_bytes_load_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn ini_shaped_text_loads_without_panic(
        lines in proptest::collection::vec(
            prop_oneof![
                "\\[(lookout|lookout:[a-z.]{0,3}|syslog|proxy|connector|x)\\]",
                "[a-z_]{1,20} ?= ?[ -~]{0,30}",
                "(syslog_)?(port|protocol|use_udp|facility|leef_delimiter|hostname|log_identifier_key|log_identifier|max_message_size|tls_server_name) = [ -~]{0,12}",
                "(api_domain|address|start_time|stream_position|metrics_listen|entity_name) = [ -~]{0,40}",
                "[#;][ -~]{0,10}",
            ],
            0..20,
        )
    ) {
        let _ = load(&lines.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------
// Destinations: [destination:NAME] with type = splunk_hec, and a tenant's list.

fn hec(extra: &str) -> String {
    format!(
        "{BASE}[destination:splunk]\ntype = splunk_hec\nurl = https://splunk.example.com:8088\ntoken = hec-secret-token\n{extra}\n"
    )
}

fn only_hec(config: &Config) -> &crate::config::HecConfig {
    match config.tenants[0].destinations.as_slice() {
        [crate::config::DestinationConfig::SplunkHec(h)] => h,
        other => panic!("expected one HEC destination, got {other:?}"),
    }
}

#[test]
fn without_destinations_a_tenant_uses_syslog() {
    let config = ok(BASE);
    assert!(matches!(
        config.tenants[0].destinations.as_slice(),
        [crate::config::DestinationConfig::Syslog { .. }]
    ));
    assert_eq!(config.tenants[0].destinations[0].name(), "syslog");
}

#[test]
fn a_hec_destination_gets_every_default() {
    let config = ok(&hec(""));
    let h = only_hec(&config);
    assert_eq!(h.name, "splunk");
    assert_eq!(h.url.as_str(), "https://splunk.example.com:8088/");
    assert_eq!(h.token.expose(), "hec-secret-token");
    assert_eq!(h.index, None);
    assert_eq!(h.sourcetype, None);
    assert_eq!(h.source, "mrav2-syslog-connector");
    // HOSTNAME precedence of [syslog]: here the sanitised machine name.
    assert_eq!(h.host, "build-box");
    assert!(!h.acknowledgements);
    assert_eq!((h.batch_max_events, h.batch_max_bytes), (500, 1_000_000));
    assert!(h.gzip);
    assert_eq!(h.request_timeout, Duration::from_secs(30));
    assert_eq!(h.ack_timeout, Duration::from_secs(300));
    assert!(h.tls.verify);
    assert_eq!(h.tls.server_name, "splunk.example.com");
    assert_eq!(h.format, Format::SplunkJson);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn a_hec_destination_takes_ocsf_and_its_own_tls_server_name() {
    let config = ok(&hec(
        "forwarder_type = OCSF\ntls_server_name = splunk-idx.internal",
    ));
    let h = only_hec(&config);
    assert_eq!(h.format, Format::Ocsf);
    assert_eq!(h.tls.server_name, "splunk-idx.internal");
    // An IPv6 collector is checked for its address, without the brackets.
    let config = ok(&hec("").replace("https://splunk.example.com:8088", "https://[fd00::5]:8088"));
    assert_eq!(only_hec(&config).tls.server_name, "fd00::5");
}

#[test]
fn every_hec_key_can_be_set() {
    let config = ok(&hec(
        "index = mobile\nsourcetype = lookout\nsource = mra\nhost = conn-01\nforwarder_type = Splunk\nacknowledgements = true\nbatch_max_events = 100\nbatch_max_bytes = 65536\ncompression = none\nrequest_timeout = 5\nack_timeout = 60\nca_file = /etc/ca.pem\ncert_file = /etc/c.pem\nkey_file = /etc/k.pem\ntls_verify = false",
    ));
    let h = only_hec(&config);
    assert_eq!(h.index.as_deref(), Some("mobile"));
    assert_eq!(h.sourcetype.as_deref(), Some("lookout"));
    assert_eq!((h.source.as_str(), h.host.as_str()), ("mra", "conn-01"));
    assert!(h.acknowledgements && !h.gzip && !h.tls.verify);
    assert_eq!((h.batch_max_events, h.batch_max_bytes), (100, 65536));
    assert_eq!(h.request_timeout, Duration::from_secs(5));
    assert_eq!(h.ack_timeout, Duration::from_secs(60));
    assert_eq!(h.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert!(h.tls.client_auth.is_some());
}

#[test]
fn hec_token_precedence_file_then_env_then_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "from-file\n").unwrap();
    let env = [("MRAV2_HEC_TOKEN_SPLUNK_CLOUD", "from-env")];
    let text = |extra: &str| {
        format!(
            "{BASE}[destination:splunk-cloud]\ntype = splunk_hec\nurl = https://x.splunkcloud.com\ntoken = from-key\n{extra}\n"
        )
    };
    let token = |config: Config| match &config.tenants[0].destinations[0] {
        crate::config::DestinationConfig::SplunkHec(h) => h.token.expose().to_owned(),
        _ => panic!(),
    };
    let with_file = text(&format!("token_file = {}", file.display()));
    assert_eq!(token(load_env(&with_file, &env).unwrap()), "from-file");
    assert_eq!(token(load_env(&text(""), &env).unwrap()), "from-env");
    assert_eq!(token(load_env(&text(""), &[]).unwrap()), "from-key");
    assert_eq!(
        hec_token_env_var("splunk-cloud.eu"),
        "MRAV2_HEC_TOKEN_SPLUNK_CLOUD_EU"
    );
}

#[test]
fn hec_problems_are_all_listed_and_never_show_the_token() {
    let text = format!(
        "{BASE}destinations = splunk\n[destination:splunk]\ntype = splunk_hec\nurl = https://user:pw@splunk\ntoken_file = /nonexistent/token\nbatch_max_events = 0\ncompression = zstd\nacknowledgements = maybe\nindex = _internal\nforwarder_type = cef\ntls_server_name = not a name\nsecret_key = x\n"
    );
    let found = problems(&text);
    let expected = [
        "config.ini: [destination:splunk] secret_key = \"***\": unknown key; accepted keys are type, url, token, token_file, index, sourcetype, source, host, forwarder_type, acknowledgements, batch_max_events, batch_max_bytes, compression, request_timeout, ack_timeout, ca_file, cert_file, key_file, tls_verify, tls_server_name, max_events_per_second",
        "config.ini: [destination:splunk] url = \"https://user:***@splunk\": must not hold credentials; put the token in token_file",
        "config.ini: [destination:splunk] token_file = \"/nonexistent/token\": cannot read it: no such file; make the file readable by the connector's user",
        "config.ini: [destination:splunk] index = \"_internal\": not a splunk index name; expected letters, digits, '_' and '-', not starting with '_' or '-'",
        "config.ini: [destination:splunk] forwarder_type = \"cef\": unknown forwarder type for splunk_hec; expected splunk (the Splunk JSON event object) or ocsf (an OCSF 1.8.0 object)",
        "config.ini: [destination:splunk] tls_server_name = \"not a name\": not a valid tls server name; expected a dns name or ip address",
        "config.ini: [destination:splunk] acknowledgements = \"maybe\": not a boolean; expected true, false, yes, no, on, off, 1 or 0",
        "config.ini: [destination:splunk] batch_max_events = \"0\": not a number of events from 1 to 100000",
        "config.ini: [destination:splunk] compression = \"zstd\": unknown compression; expected gzip or none",
    ];
    for e in expected {
        assert!(found.iter().any(|f| f == e), "missing {e:?} in {found:#?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    let text = hec("");
    let shown = format!("{:?}", ok(&text));
    assert!(!shown.contains("hec-secret-token"), "{shown}");
}

problem!(
    hec_url_is_required,
    format!("{BASE}[destination:s]\ntype = splunk_hec\ntoken = t\n"),
    "config.ini: [destination:s] url: missing; set url to the HEC base url, e.g. https://splunk.example.com:8088 or https://http-inputs-ACME.splunkcloud.com"
);

problem!(
    hec_token_is_required,
    format!("{BASE}[destination:s]\ntype = splunk_hec\nurl = https://s\n"),
    "config.ini: [destination:s] token: missing; set token_file (or MRAV2_HEC_TOKEN_S, or token) to the HEC token"
);

problem!(
    an_unknown_destination_type_is_reported,
    format!("{BASE}[destination:s]\ntype = kafka\nurl = https://s\n"),
    "config.ini: [destination:s] type = \"kafka\": unknown destination type; expected syslog or splunk_hec"
);

problem!(
    a_syslog_destination_checks_its_keys_under_its_own_name,
    format!("{BASE}[destination:qradar]\nprotocol = carrier-pigeon\n"),
    "config.ini: [destination:qradar] protocol = \"carrier-pigeon\": unknown protocol; expected udp, tcp, tls, relp, relp-tls or stdout"
);

problem!(
    a_syslog_destination_takes_no_hec_key,
    format!("{BASE}[destination:qradar]\ntype = syslog\nurl = https://s\n"),
    format!(
        "config.ini: [destination:qradar] url = \"https://s\": unknown key; accepted keys are type, {}",
        SYSLOG_KEYS.join(", ")
    )
);

problem!(
    destination_names_are_file_names_and_not_syslog,
    format!("{BASE}[destination:syslog]\ntype = splunk_hec\n"),
    "config.ini: [destination:syslog]: not a usable destination name; use letters, digits, '.', '_' and '-', and not syslog (which is [syslog])"
);

problem!(
    an_unknown_destination_is_reported,
    format!("{BASE}destinations = splunk\n"),
    "config.ini: [lookout] destinations = \"splunk\": splunk is not a destination of this file; expected syslog or the NAME of a [destination:NAME] section"
);

problem!(
    a_destination_listed_twice_is_reported,
    format!("{BASE}destinations = syslog, syslog\n"),
    "config.ini: [lookout] destinations = \"syslog, syslog\": syslog is listed twice; list each destination once"
);

problem!(
    an_empty_destination_list_is_reported,
    format!("{BASE}destinations = ,\n"),
    "config.ini: [lookout] destinations = \",\": no destination named; list one, e.g. syslog or the NAME of a [destination:NAME]"
);

#[test]
fn by_default_a_tenant_uses_every_destination_of_the_file_in_file_order() {
    let text = format!(
        "{}[syslog]\nhost = s\n[destination:lake]\nprotocol = tcp\nhost = lake.example\nforwarder_type = ocsf\n",
        hec("")
    );
    let config = ok(&text);
    let names: Vec<_> = config.tenants[0]
        .destinations
        .iter()
        .map(|d| d.name())
        .collect();
    assert_eq!(names, ["syslog", "splunk", "lake"]);
    match &config.tenants[0].destinations[2] {
        crate::config::DestinationConfig::Syslog { syslog, .. } => {
            assert_eq!(syslog.host, "lake.example");
            assert_eq!(syslog.protocol, Protocol::Tcp);
            assert_eq!(syslog.format, Format::Ocsf);
        }
        other => panic!("expected a syslog destination, got {other:?}"),
    }
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn tenant_syslog_overrides_touch_only_the_syslog_destination() {
    let text = format!(
        "{BASE}syslog_host = override.example\ndestinations = lake, syslog\n[syslog]\nhost = s\n[destination:lake]\nhost = lake.example\n"
    );
    let config = ok(&text);
    let hosts: Vec<_> = config.tenants[0]
        .destinations
        .iter()
        .map(|d| match d {
            crate::config::DestinationConfig::Syslog { name, syslog } => {
                (name.as_str(), syslog.host.as_str())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        hosts,
        [("lake", "lake.example"), ("syslog", "override.example")]
    );
}

warning!(
    a_destination_no_tenant_uses_is_a_warning,
    format!("{BASE}destinations = syslog\n[destination:lake]\nhost = lake.example\n"),
    "config.ini: [destination:lake]: no tenant uses the destination lake; add it to a tenant's destinations, or remove the section"
);

#[test]
fn every_destination_problem_is_listed_at_once() {
    let text = format!(
        "{BASE}destinations = lake, nowhere, lake\n[destination:lake]\nport = 0\n[destination:syslog]\nhost = x\n"
    );
    let found = problems(&text);
    for e in [
        "config.ini: [destination:lake] port = \"0\": not a port; expected a number from 1 to 65535",
        "config.ini: [destination:syslog]: not a usable destination name; use letters, digits, '.', '_' and '-', and not syslog (which is [syslog])",
        "config.ini: [lookout] destinations = \"lake, nowhere, lake\": nowhere is not a destination of this file; expected syslog or the NAME of a [destination:NAME] section",
        "config.ini: [lookout] destinations = \"lake, nowhere, lake\": lake is listed twice; list each destination once",
    ] {
        assert!(found.iter().any(|f| f == e), "missing {e:?} in {found:#?}");
    }
}

warning!(
    hec_over_http_warns,
    format!("{BASE}[destination:s]\ntype = splunk_hec\nurl = http://127.0.0.1:8088\ntoken = t\n"),
    "config.ini: [destination:s] url = \"http://127.0.0.1:8088\": plain http: the token and the events travel unencrypted; use https outside tests"
);

#[test]
fn a_tenant_picks_one_of_several_destinations() {
    let text = format!(
        "{}[syslog]\nhost = s\n[lookout:eu]\napi_key = k2\ndestinations = syslog\n",
        hec("").replace("[lookout]\n", "[lookout]\ndestinations = splunk\n")
    );
    let config = ok(&text);
    let names: Vec<_> = config
        .tenants
        .iter()
        .map(|t| (t.entity_name.as_str(), t.destinations[0].name()))
        .collect();
    assert_eq!(names, [("acme", "splunk"), ("eu", "syslog")]);
}
