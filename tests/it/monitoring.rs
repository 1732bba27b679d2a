//! The monitoring files the tarball ships (`packaging/monitoring/`): the Prometheus
//! alerting rules pass `promtool check rules` and their own unit tests
//! (`tests/monitoring/prometheus-rules.test.yml`, `promtool test rules`); a scrape of
//! the real binary's `/metrics`, with a syslog tenant and a Splunk HEC tenant
//! delivering, passes `promtool check metrics` and holds every series that
//! docs/operations.md lists and that the dashboard and the rules use, so renaming a
//! metric breaks this test until the dashboard, the rules and the docs follow.
//!
//! `promtool` comes from Debian's `prometheus` package, which `scripts/test.sh`
//! installs: without it these tests fail, they never skip.

use crate::fixture::Setup;
use crate::hec::receiver::{HecReceiver, Script};
use crate::kit::{PATIENCE, Sim, eventually, free_port, http_get};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rules() -> PathBuf {
    repo().join("packaging/monitoring/prometheus-rules.yml")
}

fn dashboard() -> PathBuf {
    repo().join("packaging/monitoring/grafana-dashboard.json")
}

/// `promtool ARGS`, with `stdin` as its standard input. A missing promtool fails the
/// test with the package to install.
fn promtool(args: &[&std::ffi::OsStr], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new("promtool");
    cmd.args(args).current_dir(repo());
    cmd.stdin(match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).expect("open promtool input")),
        None => Stdio::null(),
    });
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run promtool ({e}); install Debian's `prometheus` package \
             (apt-get install prometheus), as scripts/test.sh does"
        ),
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every `mrav2_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("mrav2_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names of a Prometheus text exposition (`x_total`, not the family `x`).
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// The first column of the metrics table in docs/operations.md.
fn documented_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/operations.md")).expect("read docs");
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `mrav2_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("mrav2_{n}"))
        .collect();
    assert!(names.len() > 10, "no metrics table in docs/operations.md");
    names
}

/// Every PromQL expression of the dashboard: panel targets (also inside rows) and
/// template variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_else(|| {
                    panic!("panel {:?} has a target without expr", panel["title"])
                });
                out.push(expr.to_owned());
            }
            panels(&panel["panels"], out);
        }
    }
    let mut exprs = Vec::new();
    panels(&dashboard["panels"], &mut exprs);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(query) = variable["query"]["query"].as_str() {
            exprs.push(query.to_owned());
        }
    }
    exprs
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let out = promtool(
        &["check".as_ref(), "rules".as_ref(), rules().as_os_str()],
        None,
    );
    assert!(
        out.status.success(),
        "promtool check rules:\n{}",
        describe(&out)
    );
    let cases = repo().join("tests/monitoring/prometheus-rules.test.yml");
    let out = promtool(
        &["test".as_ref(), "rules".as_ref(), cases.as_os_str()],
        None,
    );
    assert!(
        out.status.success(),
        "promtool test rules:\n{}",
        describe(&out)
    );
    // Every alert the rules define has a case.
    let rules = std::fs::read_to_string(rules()).expect("read rules");
    let cases = std::fs::read_to_string(&cases).expect("read cases");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 5, "{alerts:?}");
    for alert in alerts {
        assert!(
            cases.contains(&format!("alertname: {alert}\n")),
            "{alert} has no case in tests/monitoring/prometheus-rules.test.yml"
        );
    }
}

#[test]
fn the_dashboard_is_grafana_json_with_unique_panels_on_one_data_source() {
    let text = std::fs::read_to_string(dashboard()).expect("read dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "mrav2-connector");
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let mut ids = BTreeSet::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    let mut queried = 0;
    while let Some(panel) = stack.pop() {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "{title}: id twice"
        );
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
        queried += 1;
    }
    assert!(queried >= 10, "{queried} panels with queries");
}

/// Starts the simulator (tenant `logs` to standard output, whose first stream request
/// is answered 503 and first token request 500, so reconnects are counted; tenant
/// `splunk` to a HEC receiver with acknowledgements) and a connector with
/// `metrics_listen`, and returns a scrape taken once both delivered their history.
async fn scrape_of_a_delivering_connector() -> (String, Vec<String>) {
    const HISTORY: u64 = 30;
    let scenario = r#"{"faults": [
        {"endpoint": "stream", "tenant": "logs", "request": 1, "action": "status", "status": 503, "retry_after": "1"},
        {"endpoint": "token", "tenant": "logs", "request": 1, "action": "status", "status": 500}
    ]}"#;
    let sim = Sim::start_with_scenario(
        Some(scenario),
        &[
            "--tenant",
            "logs=logs-key",
            "--tenant",
            "splunk=splunk-key",
            "--events",
            &HISTORY.to_string(),
            "--rate",
            "0",
            "--heartbeat-ms",
            "200",
            "--types",
            "THREAT,DEVICE",
        ],
    );
    let script = Script {
        acks: true,
        ..Script::default()
    };
    let token = script.token.clone();
    let receiver = HecReceiver::start(script).await;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let setup = Setup::new(&format!(
        "[lookout]\napi_domain = {}\nsse_timeout = 10\n\n\
         [lookout:logs]\napi_key = logs-key\ndestinations = syslog\n\n\
         [lookout:splunk]\napi_key = splunk-key\ndestinations = splunk\n\n\
         [syslog]\nprotocol = stdout\n\n\
         [destination:splunk]\ntype = splunk_hec\nurl = {}\ntoken = {token}\nacknowledgements = true\n\n\
         [connector]\ncommit_interval_ms = 200\nmetrics_listen = {metrics}\n",
        sim.url(),
        receiver.url(),
    ));
    let mut connector = setup.run(&[]);
    for tenant in ["logs", "splunk"] {
        assert_eq!(sim.event_ids(tenant).len() as u64, HISTORY, "{tenant}");
    }
    let delivered = |text: &str, tenant: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "mrav2_events_delivered_total{{tenant=\"{tenant}\",destination=\"{tenant}\"}} "
                ))
                .or_else(|| {
                    l.strip_prefix(&format!(
                        "mrav2_events_delivered_total{{tenant=\"{tenant}\",destination=\"syslog\"}} "
                    ))
                })
            })
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let scrape = || {
        http_get(metrics, "/metrics")
            .ok()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    let last = std::cell::RefCell::new(String::new());
    eventually(
        || {
            format!(
                "the tenants did not deliver their history:\n{}",
                last.borrow()
            )
        },
        PATIENCE,
        || {
            let text = scrape();
            let done = delivered(&text, "logs") >= HISTORY
                && delivered(&text, "splunk") >= HISTORY
                && text.contains("mrav2_stream_reconnects_total{")
                && text.contains("mrav2_hec_responses_total{");
            *last.borrow_mut() = text;
            done
        },
    )
    .await;
    let text = scrape();
    connector.stop().await;
    let reasons = text
        .lines()
        .filter(|l| l.starts_with("mrav2_stream_reconnects_total{"))
        .map(str::to_owned)
        .collect();
    (text, reasons)
}

#[tokio::test]
async fn a_scrape_of_the_running_connector_passes_promtool_and_holds_every_name_in_use() {
    let (scrape, reasons) = scrape_of_a_delivering_connector().await;
    assert!(
        reasons.iter().any(|l| l.contains("reason=\"status_503\""))
            && reasons
                .iter()
                .any(|l| l.contains("reason=\"token_unavailable\"")),
        "the scripted 503 and token 500 were not counted: {reasons:?}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, &scrape).expect("write scrape");
    let out = promtool(&["check".as_ref(), "metrics".as_ref()], Some(&file));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics found problems in\n{scrape}\n{}",
        describe(&out)
    );

    // Every series operations.md lists is in the scrape, and nothing else.
    let exposed = sample_names(&scrape);
    assert_eq!(
        exposed,
        documented_metrics(),
        "the scrape's series (left) and the table in docs/operations.md (right) differ"
    );

    // Every metric the dashboard and the rules name is a real series.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(dashboard()).expect("read dashboard"))
            .expect("the dashboard is JSON");
    let used_by_dashboard = metric_names(&dashboard_exprs(&dashboard).join("\n"));
    let used_by_rules = metric_names(&std::fs::read_to_string(rules()).expect("read rules"));
    for (what, used) in [
        ("the dashboard", &used_by_dashboard),
        ("the alerting rules", &used_by_rules),
    ] {
        assert!(used.len() >= 5, "{what} uses {used:?}");
        let unknown: Vec<&String> = used.difference(&exposed).collect();
        assert!(
            unknown.is_empty(),
            "{what} uses series the connector does not expose: {unknown:?}\nscrape:\n{scrape}"
        );
    }
    // The dashboard shows every series.
    let unshown: Vec<&String> = exposed.difference(&used_by_dashboard).collect();
    assert!(
        unshown.is_empty(),
        "the dashboard shows nothing of {unshown:?}"
    );
}
