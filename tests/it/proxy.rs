//! The API through a proxy (`docs/configuration.md#proxy-for-the-lookout-api`, known
//! failure 35): an `https://` API behind an `http://` proxy is tunnelled with CONNECT,
//! trusting `ca_file`; a 407 is reported as refused credentials; the proxy password never
//! shows up in any error.

use crate::fixture::stdout_config;
use crate::kit::ConnectProxy;
use crate::source::stub::{KEY, Plan, Stub, collect, eventually, fast, tenant};
use mrav2_syslog_connector::config::{Proxy, ProxyConfig, Secret, TenantConfig};
use mrav2_syslog_connector::source::{EventSource, StartPoint, probe};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;

/// Characters that need percent-encoding in a URL, to check the credential is sent
/// as typed.
const PASSWORD: &str = "pr0xy s3cret:@/%pw";

/// Whether a text shows the password, plain or percent-encoded.
fn leaks(text: &str) -> bool {
    text.contains("s3cret")
}

/// A source for `tenant` through `proxy`, from the beginning, with fast retries.
fn source(tenant: &TenantConfig, proxy: &ProxyConfig) -> EventSource {
    EventSource::new(
        tenant,
        proxy,
        StartPoint::Beginning,
        CancellationToken::new(),
    )
    .unwrap()
    .with_policy(fast())
}

/// A test CA and a leaf for 127.0.0.1 signed by it: (CA PEM, leaf PEM, leaf key PEM).
fn pki() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mrav2 test ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

struct Https {
    stub: Stub,
    _dir: tempfile::TempDir,
    tenant: TenantConfig,
}

async fn https_stub(plan: Plan) -> Https {
    let (ca, leaf, key) = pki();
    let stub = Stub::start_tls(plan, &leaf, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let mut t = tenant(&format!("https://{}", stub.addr));
    t.ca_file = Some(ca_file);
    Https {
        stub,
        _dir: dir,
        tenant: t,
    }
}

fn explicit(proxy: &ConnectProxy, user: &str, password: &str) -> ProxyConfig {
    ProxyConfig::Explicit(Proxy {
        address: url::Url::parse(&proxy.url()).unwrap(),
        username: Some(user.into()),
        password: Some(Secret::new(password)),
        no_proxy: Vec::new(),
    })
}

#[tokio::test]
async fn an_https_api_goes_through_an_http_proxy_with_connect() {
    let api = https_stub(Plan::new(6, 3)).await;
    let proxy = ConnectProxy::start(Some(("alice", PASSWORD))).await;
    let mut s = source(&api.tenant, &explicit(&proxy, "alice", PASSWORD));
    assert_eq!(collect(&mut s, 6).await, api.stub.plan().ids);

    let seen = proxy.requests();
    assert!(!seen.is_empty());
    let target = api.stub.addr.to_string();
    for r in &seen {
        assert_eq!(r.method, "CONNECT", "{r:?}");
        assert_eq!(r.target, target, "{r:?}");
        assert_eq!(
            r.proxy_authorization.as_deref(),
            Some(
                format!(
                    "Basic {}",
                    crate::kit::base64(format!("alice:{PASSWORD}").as_bytes())
                )
                .as_str()
            )
        );
    }
    // Both endpoints were reached, and only through the tunnel.
    assert_eq!(api.stub.token_requests().len(), 1);
    assert_eq!(api.stub.streams().len(), 1);
}

#[tokio::test]
async fn no_proxy_hosts_bypass_the_proxy() {
    let api = https_stub(Plan::new(3, 3)).await;
    let proxy = ConnectProxy::start(None).await;
    let config = ProxyConfig::Explicit(Proxy {
        address: url::Url::parse(&proxy.url()).unwrap(),
        username: None,
        password: None,
        no_proxy: vec!["127.0.0.1".into()],
    });
    let mut s = source(&api.tenant, &config);
    assert_eq!(collect(&mut s, 3).await, api.stub.plan().ids);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

#[tokio::test]
async fn a_407_says_the_proxy_refused_the_credentials_without_the_password() {
    let api = https_stub(Plan::new(3, 3)).await;
    let proxy = ConnectProxy::start(Some(("alice", "the-right-one"))).await;
    let config = explicit(&proxy, "alice", PASSWORD);

    // check-config --probe stops at the token step with a clear message.
    let steps = probe(&api.tenant, &config).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    let err = steps[1].outcome.as_ref().unwrap_err();
    assert!(err.contains("proxy refused the credentials"), "{err}");
    assert!(!leaks(err), "{err}");
    assert!(!err.contains(KEY), "{err}");

    // The running source reports the same, unhealthy, and keeps trying.
    let mut s = source(&api.tenant, &config);
    let status = s.status();
    assert!(!leaks(&format!("{s:?}")));
    let reader = tokio::spawn(async move { s.next().await });
    eventually("two 407s", || {
        status
            .snapshot()
            .reconnects
            .get("proxy_auth")
            .copied()
            .unwrap_or(0)
            >= 2
    })
    .await;
    reader.abort();
    let snap = status.snapshot();
    assert!(!snap.healthy);
    let err = snap.last_error.clone().unwrap();
    assert!(err.contains("proxy refused the credentials"), "{err}");
    assert!(!leaks(&err) && !leaks(&format!("{snap:?}")));
    assert!(!leaks(&format!("{config:?}")));
    assert!(api.stub.requests().is_empty(), "nothing got past the proxy");
}

#[tokio::test]
async fn without_ca_file_the_test_ca_is_not_trusted() {
    let mut api = https_stub(Plan::new(3, 3)).await;
    api.tenant.ca_file = None;
    let steps = probe(
        &api.tenant,
        &ProxyConfig::Explicit(Proxy {
            address: url::Url::parse("http://127.0.0.1:9").unwrap(),
            username: None,
            password: None,
            no_proxy: vec!["127.0.0.1".into()],
        }),
    )
    .await;
    let err = steps[1].outcome.as_ref().unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test]
async fn an_http_api_uses_the_proxy_too_and_a_407_status_is_explained() {
    // A plain-http API (simulators) goes through the proxy in absolute form; the
    // proxy's 407 then arrives as an HTTP status rather than a failed tunnel.
    let stub = Stub::start(Plan::new(1, 1)).await;
    let proxy = ConnectProxy::start(Some(("alice", "the-right-one"))).await;
    let config = explicit(&proxy, "alice", PASSWORD);
    let steps = probe(&tenant(&stub.url()), &config).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    let err = steps[1].outcome.as_ref().unwrap_err();
    assert!(
        err.contains("HTTP 407") && err.contains("proxy refused the credentials"),
        "{err}"
    );
    assert!(!leaks(err), "{err}");
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, format!("{}/oauth2/token", stub.url()));
    assert!(stub.requests().is_empty());
}

#[tokio::test]
async fn the_https_simulator_through_an_http_connect_proxy() {
    // known-failures 35 as written: simulator on HTTPS, `ca_file`, `[proxy] address =
    // http://127.0.0.1:<p>`; the proxy logs CONNECT for the simulator and events arrive.
    use mrav2_syslog_connector::simulator::{self, SimOptions};
    let (ca, leaf, key) = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path, ca_path) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_path, leaf).unwrap();
    std::fs::write(&key_path, key).unwrap();
    std::fs::write(&ca_path, ca).unwrap();
    let (addr, sim) = simulator::start(SimOptions {
        tenants: std::collections::BTreeMap::from([("acme".to_string(), KEY.to_string())]),
        events: 20,
        rate: 0,
        heartbeat: std::time::Duration::from_millis(200),
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let mut t = tenant(&sim.base_url());
    t.types = mrav2_syslog_connector::event::EventType::ALL.to_vec();
    t.ca_file = Some(ca_path);
    let proxy = ConnectProxy::start(Some(("alice", PASSWORD))).await;
    let mut s = source(&t, &explicit(&proxy, "alice", PASSWORD));
    assert_eq!(collect(&mut s, 20).await, sim.event_ids("acme"));
    let seen = proxy.requests();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|r| r.method == "CONNECT" && r.target == addr.to_string()),
        "{seen:?}"
    );
    assert_eq!(sim.requests().len(), 2, "one token and one stream request");
}

/// Without a `[proxy]` section the standard environment variables apply: the real
/// binary, given only `HTTP_PROXY`, sends its token request through it. (The test proxy
/// tunnels CONNECT only and answers a plain forward request with 501, which is enough to
/// see where the request went.)
#[tokio::test(flavor = "multi_thread")]
async fn without_a_proxy_section_the_environment_proxy_is_used() {
    use std::process::Stdio;

    let proxy = ConnectProxy::start(None).await;
    // Nothing listens on the API address: a request that bypassed the proxy would fail
    // without the proxy ever seeing it.
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = api.local_addr().unwrap();
    drop(api);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.ini");
    std::fs::write(
        &config,
        stdout_config(&format!("http://{addr}"), "acme-key"),
    )
    .unwrap();
    let mut child = crate::kit::connector()
        .arg("--config")
        .arg(&config)
        .env("HTTP_PROXY", proxy.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wanted = format!("http://{addr}/oauth2/token");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut targets = Vec::new();
    while tokio::time::Instant::now() < deadline {
        targets = proxy.requests().into_iter().map(|r| r.target).collect();
        if targets.iter().any(|t| t == &wanted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        targets.iter().any(|t| t == &wanted),
        "the token request did not go through HTTP_PROXY: {targets:?}"
    );
}
