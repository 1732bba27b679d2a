//! The syslog end of `scripts/bench.sh`: a fast TCP/TLS receiver that counts records and
//! checks that every event the simulator generated arrived exactly once.
//!
//! It accepts any number of connections (one per tenant, plus reconnects), splits each
//! byte stream into records by either framing of RFC 6587, telling them apart per
//! frame by the first byte (a digit is octet counting, `<` is LF framing), and takes
//! from each record the tenant, the event id and (LEEF) the smishing detection index.
//! One smishing event gives one LEEF record per detection, so a record is a duplicate
//! when its (tenant, id, detection index) was seen before.
//!
//! When does it stop? It fetches the simulator's list of generated ids
//! (`/_sim/events?tenant=NAME`) once the first record arrived (firehose) or `--duration`
//! seconds after it (fixed rate), waits until every listed id arrived or no record came
//! for `--idle-timeout` seconds, lets stragglers (duplicates) in for half a second more,
//! then fetches the lists again and compares: an id of the first list that never
//! arrived is missing; a received id absent from the second list is unexpected.
//!
//! With `--transport relp` (or `relp-tls`) it speaks RELP as rsyslog's `imrelp` does:
//! it answers `open` with `200 OK` and its offers, every `syslog` command with
//! `rsp 200 OK` once the record is counted, and `close` with an empty `rsp`. Answers
//! are written after each read, in one write; the client's window bounds how many are
//! in flight, so they never fill the socket buffers.
//!
//! With `--latency` it also measures the added latency of every record: the time the
//! record arrived here minus the time its event left the simulator. For the second, a
//! *tap* opens its own stream per tenant (`id=0`, all types, before the connector
//! starts) and notes when each event's batch arrived; both times are taken by this
//! process's clock, once per socket read, so loopback delivery is counted on both sides
//! and cancels out. (The events' `created_time` cannot serve: above 1,000 events/s the
//! simulator moves it forward to keep it strictly increasing, ahead of the clock.)
//! Only records arriving between `--latency-warmup` seconds and `--duration` seconds
//! after the first record count: earlier ones include events generated before the
//! connector had connected, later ones could be delayed by the receiver's own checks.
//!
//! With `--transport hec` it is a Splunk HTTP Event Collector instead: it answers
//! `POST /services/collector/event` (gzip or not) with HEC's success, and counts each
//! envelope's event as a record (`--format splunk-json`).
//!
//! Output, after the first line `listening on ADDR`: `key=value` lines for the script.
//! Exit status 0 when exactly-once holds, 1 when it does not, 2 on an error.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use memchr::memchr;
use memchr::memmem::{Finder, FinderRev};
use mrav2_syslog_connector::sink::relp::frame::{
    Command as RelpCommand, Parser as RelpParser, encode as relp_encode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Counting syslog receiver for scripts/bench.sh")]
struct Args {
    /// Where to listen (loopback only in the benchmark).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// tcp, tls (with a certificate made at start-up), relp, relp-tls, or hec (Splunk
    /// HTTP Event Collector over plain HTTP).
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// With `--transport tls` or `relp-tls`: where to write the PEM CA certificate that
    /// signed the receiver's certificate (the connector's `[syslog] ca_file`).
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// The message format of the records.
    #[arg(long, value_enum, default_value = "leef")]
    format: Format,
    /// The simulator's base URL, e.g. `http://127.0.0.1:40000`.
    #[arg(long)]
    sim: String,
    /// A simulator tenant whose events must arrive, as `NAME` or `NAME=KEY`
    /// (repeatable). NAME must be the connector's `entity_name`; `--latency` needs the
    /// Application Key for its tap.
    #[arg(long = "tenant", required = true)]
    tenants: Vec<String>,
    /// Fixed-rate mode: receive for this many seconds after the first record, then
    /// check the ids generated until then.
    #[arg(long)]
    duration: Option<f64>,
    /// Measure each record's arrival minus the time its event left the simulator.
    #[arg(long)]
    latency: bool,
    /// Seconds after the first record whose records are left out of the latency figures.
    #[arg(long, default_value_t = 2.0)]
    latency_warmup: f64,
    /// Give up waiting for missing ids after this many seconds without a record.
    #[arg(long, default_value_t = 30.0)]
    idle_timeout: f64,
    /// Seconds to wait for the first record at all.
    #[arg(long, default_value_t = 120.0)]
    start_timeout: f64,
    /// Expected events in total, to size the tables up front (optional).
    #[arg(long, default_value_t = 0)]
    expect: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Tcp,
    Tls,
    Relp,
    RelpTls,
    Hec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Leef,
    SplunkJson,
    SplunkKv,
}

/// Where, in a record, the fields the receiver needs are found.
struct Extractor {
    format: Format,
    /// Tenant names in `--tenant` order; `None` with a single tenant (not looked up).
    tenants: Option<Vec<Vec<u8>>>,
    id: Finder<'static>,
    tenant: Finder<'static>,
    /// Splunk puts `entName` last: searched from the end.
    tenant_rev: FinderRev<'static>,
    detection: Finder<'static>,
    /// Records are HEC envelopes, not syslog records.
    hec: bool,
}

/// What one record said.
struct Record {
    tenant: usize,
    id: u128,
    detection: u32,
}

/// Everything received, shared by the connection tasks.
#[derive(Default)]
struct Tally {
    /// Per tenant: event id → bit mask of LEEF detection indexes seen (bit 0 also for
    /// records without an index). Indexes ≥ 64 go to `high_detections`.
    ids: Vec<HashMap<u128, u64>>,
    high_detections: std::collections::HashSet<(usize, u128, u32)>,
    records: u64,
    duplicates: u64,
    malformed: u64,
    bytes: u64,
    connections: u64,
    first_record_us: Option<u128>,
    last_record_us: u128,
    /// (tenant, id, arrival in µs since the epoch) of each record after the warm-up,
    /// with `--latency`.
    arrivals: Vec<(usize, u128, u128)>,
    /// Set once the check starts: later records are not counted, so that everything
    /// counted was generated before the simulator's final list was fetched.
    frozen: bool,
}

/// The largest RELP record accepted: the connector's largest `max_message_size`.
const MAX_RELP_RECORD: usize = 16 * 1024 * 1024;

/// Which records count for latency, in time since the first record: from the end of
/// the warm-up to the end of `--duration`, so that the receiver's own work after that
/// (fetching and comparing the id lists) cannot delay what is measured.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Duration,
    to: Option<Duration>,
}

/// When each event's batch arrived at the tap: (tenant, id) → µs since the epoch.
type Departures = Arc<Mutex<HashMap<(usize, u128), u128>>>;

type Shared = Arc<Mutex<Tally>>;

fn main() {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench_receiver: cannot start a runtime: {error}");
            std::process::exit(2);
        }
    };
    let code = match runtime.block_on(run(args)) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(error) => {
            eprintln!("bench_receiver: {error:#}");
            2
        }
    };
    let _ = std::io::stdout().flush();
    // Connection tasks may still be reading; nothing of theirs is needed any more.
    std::process::exit(code);
}

async fn run(mut args: Args) -> anyhow::Result<bool> {
    mrav2_syslog_connector::tls::install_crypto_provider();
    // `--tenant NAME=KEY`: the name is what records carry; the key is for the tap.
    let keys: Vec<Option<String>> = args
        .tenants
        .iter_mut()
        .map(|tenant| {
            let (name, key) = match tenant.split_once('=') {
                Some((name, key)) => (name.to_owned(), Some(key.to_owned())),
                None => (tenant.clone(), None),
            };
            *tenant = name;
            key
        })
        .collect();
    // The simulator is on loopback: never through a proxy from the environment.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building an HTTP client")?;
    let departures: Departures = Arc::default();
    if args.latency {
        for (index, (name, key)) in args.tenants.iter().zip(&keys).enumerate() {
            let key = key
                .as_deref()
                .with_context(|| format!("--latency needs --tenant {name}=KEY"))?;
            let body = open_tap(&client, &args.sim, key).await?;
            tokio::spawn(tap(body, index, departures.clone()));
        }
    }
    let acceptor = match args.transport {
        Transport::Tcp | Transport::Relp | Transport::Hec => None,
        Transport::Tls | Transport::RelpTls => {
            let ca_out = args
                .ca_out
                .as_ref()
                .context("--transport tls and relp-tls need --ca-out FILE")?;
            Some(tls_acceptor(ca_out)?)
        }
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    std::io::stdout().flush()?;

    let tally: Shared = Arc::new(Mutex::new(Tally {
        ids: args
            .tenants
            .iter()
            .map(|_| HashMap::with_capacity(args.expect / args.tenants.len().max(1)))
            .collect(),
        ..Tally::default()
    }));
    let mut extractor = Extractor::new(args.format, &args.tenants);
    extractor.hec = args.transport == Transport::Hec;
    let extractor = Arc::new(extractor);
    let latency = args.latency.then(|| Window {
        from: Duration::from_secs_f64(args.latency_warmup),
        to: args.duration.map(Duration::from_secs_f64),
    });
    let relp = matches!(args.transport, Transport::Relp | Transport::RelpTls);
    if args.transport == Transport::Hec {
        tokio::spawn(hec::serve(listener, extractor, tally.clone(), latency));
    } else {
        tokio::spawn(accept_loop(
            listener,
            acceptor,
            relp,
            extractor,
            tally.clone(),
            latency,
        ));
    }

    // Wait for the first record.
    let started = Instant::now();
    let start_timeout = Duration::from_secs_f64(args.start_timeout);
    while lock(&tally).first_record_us.is_none() {
        if started.elapsed() > start_timeout {
            bail!("no record arrived within {} s", args.start_timeout);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(duration) = args.duration {
        tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    }

    let expected = fetch_ids(&client, &args.sim, &args.tenants).await?;
    let idle_timeout = Duration::from_secs_f64(args.idle_timeout);
    let mut last_seen = (0u64, Instant::now());
    loop {
        {
            let tally = lock(&tally);
            if all_arrived(&tally, &expected) {
                break;
            }
            if tally.records != last_seen.0 {
                last_seen = (tally.records, Instant::now());
            } else if last_seen.1.elapsed() > idle_timeout {
                eprintln!(
                    "bench_receiver: no record for {} s; checking what arrived",
                    args.idle_timeout
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Duplicates, if any, would come right behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock(&tally).frozen = true;
    let generated = fetch_ids(&client, &args.sim, &args.tenants).await?;
    let first_stream_request = first_stream_request(&client, &args.sim).await?;

    let tally = lock(&tally);
    let departures = departures.lock().unwrap_or_else(PoisonError::into_inner);
    let ok = report(&args, &tally, &expected, &generated, &departures);
    println!(
        "first_stream_request_unix={}",
        first_stream_request.map_or_else(|| "n/a".into(), |us| seconds(us as u128))
    );
    Ok(ok)
}

/// When the simulator received the first stream request (`/_sim/requests`), in µs since
/// the epoch; its `at` has millisecond precision.
async fn first_stream_request(client: &reqwest::Client, sim: &str) -> anyhow::Result<Option<i64>> {
    #[derive(serde::Deserialize)]
    struct Request {
        at: String,
        endpoint: String,
        #[serde(rename = "user-agent")]
        user_agent: Option<String>,
    }
    let url = format!("{}/_sim/requests", sim.trim_end_matches('/'));
    let requests: Vec<Request> = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("GET {url}: unexpected body"))?;
    // The connector's, not the tap's.
    let Some(first) = requests.iter().find(|r| {
        r.endpoint == "stream"
            && r.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("mrav2-syslog-connector"))
    }) else {
        return Ok(None);
    };
    let at = chrono::DateTime::parse_from_rfc3339(&first.at)
        .with_context(|| format!("{url}: bad time {:?}", first.at))?;
    Ok(Some(at.timestamp_micros()))
}

/// Prints the `key=value` report; true when exactly-once holds.
fn report(
    args: &Args,
    tally: &Tally,
    expected: &[Vec<u128>],
    generated: &[Vec<u128>],
    departures: &HashMap<(usize, u128), u128>,
) -> bool {
    let mut missing = 0u64;
    let mut unexpected = 0u64;
    let mut received = 0u64;
    for (t, ids) in tally.ids.iter().enumerate() {
        received += ids.len() as u64;
        missing += expected[t]
            .iter()
            .filter(|id| !ids.contains_key(id))
            .count() as u64;
        let known: std::collections::HashSet<&u128> = generated[t].iter().collect();
        unexpected += ids.keys().filter(|id| !known.contains(id)).count() as u64;
    }
    let expected_total: usize = expected.iter().map(Vec::len).sum();
    let ok = missing == 0
        && unexpected == 0
        && tally.duplicates == 0
        && tally.malformed == 0
        && expected_total > 0;
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        out.push_str(key);
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    };
    line("result", if ok { "ok" } else { "FAILED" }.into());
    line("tenants", args.tenants.len().to_string());
    line("connections", tally.connections.to_string());
    line("events_expected", expected_total.to_string());
    line("events_received", received.to_string());
    line("records", tally.records.to_string());
    line("duplicates", tally.duplicates.to_string());
    line("missing", missing.to_string());
    line("unexpected", unexpected.to_string());
    line("malformed", tally.malformed.to_string());
    line("bytes", tally.bytes.to_string());
    line(
        "first_record_unix",
        seconds(tally.first_record_us.unwrap_or_default()),
    );
    line("last_record_unix", seconds(tally.last_record_us));
    if args.latency {
        let mut untapped = 0u64;
        let mut l: Vec<i64> = Vec::with_capacity(tally.arrivals.len());
        for &(tenant, id, arrived) in &tally.arrivals {
            match departures.get(&(tenant, id)) {
                Some(&left) => l.push(arrived as i64 - left as i64),
                None => untapped += 1,
            }
        }
        l.sort_unstable();
        let pick = |q: f64| -> String {
            if l.is_empty() {
                return "n/a".into();
            }
            let index = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len()) - 1;
            format!("{:.1}", l[index] as f64 / 1000.0)
        };
        line("latency_samples", l.len().to_string());
        line("latency_untapped", untapped.to_string());
        line("latency_p50_ms", pick(0.50));
        line("latency_p99_ms", pick(0.99));
        line("latency_max_ms", pick(1.0));
    }
    print!("{out}");
    ok
}

fn seconds(us: u128) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn lock(tally: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

fn all_arrived(tally: &Tally, expected: &[Vec<u128>]) -> bool {
    tally.ids.iter().zip(expected).all(|(ids, expected)| {
        ids.len() >= expected.len() && expected.iter().all(|id| ids.contains_key(id))
    })
}

/// The simulator's generated ids per tenant, parsed.
async fn fetch_ids(
    client: &reqwest::Client,
    sim: &str,
    tenants: &[String],
) -> anyhow::Result<Vec<Vec<u128>>> {
    let mut all = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let url = format!("{}/_sim/events?tenant={tenant}", sim.trim_end_matches('/'));
        let response = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?;
        let ids: Vec<String> = response
            .json()
            .await
            .with_context(|| format!("GET {url}: not a JSON array of ids"))?;
        let parsed = ids
            .iter()
            .map(|id| parse_uuid(id.as_bytes()).with_context(|| format!("{url}: bad id {id:?}")))
            .collect::<anyhow::Result<Vec<u128>>>()?;
        all.push(parsed);
    }
    Ok(all)
}

/// Fetches a token with `key` and opens the tap's stream (`id=0`, all types).
async fn open_tap(
    client: &reqwest::Client,
    sim: &str,
    key: &str,
) -> anyhow::Result<reqwest::Response> {
    #[derive(serde::Deserialize)]
    struct Token {
        access_token: String,
    }
    let base = sim.trim_end_matches('/');
    let token: Token = client
        .post(format!("{base}/oauth2/token"))
        .bearer_auth(key)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("tap: token request")?
        .json()
        .await
        .context("tap: token response")?;
    client
        .get(format!("{base}/mra/stream/v2/events?id=0"))
        .bearer_auth(&token.access_token)
        .header("accept", "text/event-stream")
        .header("user-agent", "bench_receiver-tap")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("tap: stream request")
}

/// Notes when each event of the tap's stream arrived.
async fn tap(response: reqwest::Response, tenant: usize, departures: Departures) {
    use futures_util::StreamExt as _;
    use mrav2_syslog_connector::source::sse::{DEFAULT_MAX_EVENT_SIZE, Parser};

    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        id: String,
    }
    let mut parser = Parser::new(DEFAULT_MAX_EVENT_SIZE);
    let mut frames = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        let left = now_us();
        if parser.feed_into(&chunk, &mut frames).is_err() {
            eprintln!("bench_receiver: tap: stream message too large");
            return;
        }
        let mut departures = departures.lock().unwrap_or_else(PoisonError::into_inner);
        for frame in frames.drain(..) {
            let Some(data) = frame.data.filter(|_| frame.event == "events") else {
                continue;
            };
            let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(&data) else {
                continue;
            };
            for raw in envelope.events {
                if let Some(id) = serde_json::from_str::<Event>(raw.get())
                    .ok()
                    .and_then(|e| parse_uuid(e.id.as_bytes()))
                {
                    departures.entry((tenant, id)).or_insert(left);
                }
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    relp: bool,
    extractor: Arc<Extractor>,
    tally: Shared,
    latency: Option<Window>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("bench_receiver: accept: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        lock(&tally).connections += 1;
        let (extractor, tally, acceptor) = (extractor.clone(), tally.clone(), acceptor.clone());
        tokio::spawn(async move {
            let result = match (acceptor, relp) {
                (None, false) => read_records(stream, &extractor, &tally, latency).await,
                (None, true) => serve_relp(stream, &extractor, &tally, latency).await,
                (Some(acceptor), relp) => match acceptor.accept(stream).await {
                    Ok(tls) if relp => serve_relp(tls, &extractor, &tally, latency).await,
                    Ok(tls) => read_records(tls, &extractor, &tally, latency).await,
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = result {
                eprintln!("bench_receiver: connection: {error}");
            }
        });
    }
}

/// Reads one connection to its end, splitting records in big reads.
async fn read_records<S: AsyncRead + Unpin>(
    mut stream: S,
    extractor: &Extractor,
    tally: &Shared,
    latency: Option<Window>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut parsed: Vec<Record> = Vec::with_capacity(4096);
    loop {
        if filled == buf.len() {
            // One frame larger than the buffer: make room for it.
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        let arrived_us = now_us();
        filled += n;
        let mut malformed = 0u64;
        let consumed = split_frames(&buf[..filled], |record| match extractor.record(record) {
            Some(r) => parsed.push(r),
            None => malformed += 1,
        });
        tally_records(
            tally,
            &mut parsed,
            malformed,
            consumed as u64,
            arrived_us,
            latency,
        );
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

/// Serves one RELP session to its end: counts each `syslog` record and answers it.
async fn serve_relp<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    extractor: &Extractor,
    tally: &Shared,
    latency: Option<Window>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut parser = RelpParser::new(MAX_RELP_RECORD);
    let mut parsed: Vec<Record> = Vec::with_capacity(4096);
    let mut answers = Vec::with_capacity(64 * 1024);
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let arrived_us = now_us();
        let mut malformed = 0u64;
        let closed = answer_relp(
            &mut parser,
            &buf[..n],
            &mut answers,
            |record| match extractor.record(record) {
                Some(r) => parsed.push(r),
                None => malformed += 1,
            },
        )
        .map_err(std::io::Error::other)?;
        // Counted before answered, as rsyslog queues a record before its `200`.
        tally_records(tally, &mut parsed, malformed, n as u64, arrived_us, latency);
        stream.write_all(&answers).await?;
        answers.clear();
        if closed {
            stream.flush().await?;
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

/// Handles the RELP frames in `input`: calls `each` with every `syslog` record and
/// appends the answers to `out`. `Ok(true)` after a `close` (answered).
fn answer_relp(
    parser: &mut RelpParser,
    mut input: &[u8],
    out: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]),
) -> Result<bool, String> {
    while let Some(frame) = parser.next_frame(&mut input).map_err(|e| e.to_string())? {
        let answer: &[u8] = match frame.known_command() {
            Some(RelpCommand::Syslog) => {
                each(frame.data);
                b"200 OK"
            }
            Some(RelpCommand::Open) => {
                b"200 OK\nrelp_version=0\nrelp_software=bench_receiver\ncommands=syslog"
            }
            Some(RelpCommand::Close) => {
                relp_encode(out, frame.txnr, RelpCommand::Rsp, b"").map_err(|e| e.to_string())?;
                return Ok(true);
            }
            _ => return Err(format!("unexpected relp command {:?}", frame.command)),
        };
        relp_encode(out, frame.txnr, RelpCommand::Rsp, answer).map_err(|e| e.to_string())?;
    }
    Ok(false)
}

fn tally_records(
    tally: &Shared,
    parsed: &mut Vec<Record>,
    malformed: u64,
    bytes: u64,
    arrived_us: u128,
    latency: Option<Window>,
) {
    let mut tally = lock(tally);
    let tally = &mut *tally;
    if tally.frozen || (parsed.is_empty() && malformed == 0) {
        parsed.clear();
        return;
    }
    let first = *tally.first_record_us.get_or_insert(arrived_us);
    tally.last_record_us = tally.last_record_us.max(arrived_us);
    tally.records += parsed.len() as u64 + malformed;
    tally.malformed += malformed;
    tally.bytes += bytes;
    let measure = latency.is_some_and(|window| {
        let since_first = arrived_us.saturating_sub(first);
        since_first >= window.from.as_micros()
            && window.to.is_none_or(|to| since_first < to.as_micros())
    });
    for record in parsed.drain(..) {
        let duplicate = if record.detection < 64 {
            let bit = 1u64 << record.detection;
            let seen = tally.ids[record.tenant].entry(record.id).or_insert(0);
            let duplicate = *seen & bit != 0;
            *seen |= bit;
            duplicate
        } else {
            tally.ids[record.tenant].entry(record.id).or_insert(0);
            !tally
                .high_detections
                .insert((record.tenant, record.id, record.detection))
        };
        tally.duplicates += u64::from(duplicate);
        if measure {
            tally.arrivals.push((record.tenant, record.id, arrived_us));
        }
    }
}

/// Calls `each` with every complete record in `bytes` (framing removed) and returns how
/// many bytes were consumed; the rest is the start of an incomplete frame.
fn split_frames(bytes: &[u8], mut each: impl FnMut(&[u8])) -> usize {
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest[0].is_ascii_digit() {
            // Octet counting: MSG-LEN SP RECORD.
            let Some(space) = memchr(b' ', &rest[..rest.len().min(12)]) else {
                if rest.len() >= 12 {
                    // Not a length after all: skip to the next LF and go on.
                    each(b"");
                    match memchr(b'\n', rest) {
                        Some(lf) => pos += lf + 1,
                        None => return pos,
                    }
                    continue;
                }
                return pos;
            };
            let len: Option<usize> = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|s| s.parse().ok());
            let Some(len) = len else {
                each(b"");
                pos += space + 1;
                continue;
            };
            let end = space + 1 + len;
            if rest.len() < end {
                return pos;
            }
            each(&rest[space + 1..end]);
            pos += end;
        } else {
            // LF framing (or garbage, which `each` reports as malformed).
            match memchr(b'\n', rest) {
                Some(lf) => {
                    each(&rest[..lf]);
                    pos += lf + 1;
                }
                None => return pos,
            }
        }
    }
    pos
}

impl Extractor {
    fn new(format: Format, tenants: &[String]) -> Extractor {
        let (id, tenant): (&[u8], &[u8]) = match format {
            Format::Leef => (b"lookoutId=", b"lookoutEntName="),
            Format::SplunkJson => (b"\"id\":\"", b"\"entName\":\""),
            Format::SplunkKv => (b" id=\"", b"entName=\""),
        };
        Extractor {
            format,
            tenants: (tenants.len() > 1)
                .then(|| tenants.iter().map(|t| t.as_bytes().to_vec()).collect()),
            id: Finder::new(id).into_owned(),
            tenant: Finder::new(tenant).into_owned(),
            tenant_rev: FinderRev::new(tenant).into_owned(),
            detection: Finder::new(b"smishingDetectionIndex=").into_owned(),
            hec: false,
        }
    }

    /// The fields of one record, or `None` when it is malformed.
    fn record(&self, record: &[u8]) -> Option<Record> {
        // A syslog record starts with its PRI, a HEC envelope with its object.
        let first = if self.hec { b'{' } else { b'<' };
        if record.first() != Some(&first) {
            return None;
        }
        let at = self.id.find(record)? + self.id.needle().len();
        let id = parse_uuid(record.get(at..at + 36)?)?;
        let tenant = match &self.tenants {
            None => 0,
            Some(names) => {
                let value = match self.format {
                    Format::Leef => after(record, self.tenant.find(record)?, &self.tenant, b'\t'),
                    _ => after(record, self.tenant_rev.rfind(record)?, &self.tenant, b'"'),
                };
                names.iter().position(|n| n.as_slice() == value)?
            }
        };
        let detection = match self.format {
            Format::Leef => match self.detection.find(record) {
                Some(at) => {
                    let digits = after(record, at, &self.detection, b'\t');
                    std::str::from_utf8(digits).ok()?.parse().ok()?
                }
                None => 0,
            },
            _ => 0,
        };
        Some(Record {
            tenant,
            id,
            detection,
        })
    }
}

/// The value that starts after the needle found at `at` and ends at `end` (or at the
/// end of the record).
fn after<'r>(record: &'r [u8], at: usize, needle: &Finder<'_>, end: u8) -> &'r [u8] {
    let value = &record[at + needle.needle().len()..];
    match memchr(end, value) {
        Some(stop) => &value[..stop],
        None => value,
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` → its 128 bits.
fn parse_uuid(text: &[u8]) -> Option<u128> {
    if text.len() != 36 {
        return None;
    }
    let mut value = 0u128;
    for (i, &b) in text.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default()
}

/// A CA and a server certificate for `127.0.0.1` and `localhost`, made now; the CA
/// certificate is written to `ca_out`.
fn tls_acceptor(ca_out: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "bench_receiver CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;
    std::fs::write(ca_out, ca.pem()).with_context(|| format!("writing {}", ca_out.display()))?;

    let config =
        rustls::ServerConfig::builder_with_provider(mrav2_syslog_connector::tls::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(server_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_both_kinds_split() {
        let mut seen = Vec::new();
        let bytes = b"<14>a b\n5 <1>cd<2>x\n7 <3>ef";
        let consumed = split_frames(bytes, |r| seen.push(r.to_vec()));
        assert_eq!(
            seen,
            [b"<14>a b".to_vec(), b"<1>cd".to_vec(), b"<2>x".to_vec()]
        );
        assert_eq!(&bytes[consumed..], b"7 <3>ef");
    }

    #[test]
    fn relp_is_answered_like_imrelp() {
        let mut parser = RelpParser::new(MAX_RELP_RECORD);
        let mut out = Vec::new();
        let mut records = Vec::new();
        let session = b"1 open 14 relp_version=0\n2 syslog 5 <1>ab\n3 syslog 6 <2>c\nd\n4 clo";
        // Any split: here the `close` arrives in two reads.
        let closed = answer_relp(&mut parser, session, &mut out, |r| records.push(r.to_vec()))
            .expect("valid relp");
        assert!(!closed);
        assert!(
            answer_relp(&mut parser, b"se 0\n", &mut out, |_| {}).expect("valid relp"),
            "close ends the session"
        );
        assert_eq!(records, [b"<1>ab".to_vec(), b"<2>c\nd".to_vec()]);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "1 rsp 66 200 OK\nrelp_version=0\nrelp_software=bench_receiver\ncommands=syslog\n\
             2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 0\n"
        );
        let mut parser = RelpParser::new(MAX_RELP_RECORD);
        assert!(answer_relp(&mut parser, b"<13>not relp\n", &mut Vec::new(), |_| {}).is_err());
    }

    /// The connector's RELP session against this receiver on loopback: every record
    /// counted once and answered 200.
    #[tokio::test]
    async fn a_relp_session_is_served() {
        use mrav2_syslog_connector::config::{
            Format as F, Framing, HeaderFormat, HeaderTime, Protocol, SyslogConfig, TlsConfig,
        };
        use mrav2_syslog_connector::sink::relp::{Answer, RelpSession};
        use mrav2_syslog_connector::sink::transport::Connector;

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tally: Shared = Arc::new(Mutex::new(Tally {
            ids: vec![HashMap::new()],
            ..Tally::default()
        }));
        let extractor = Arc::new(Extractor::new(Format::Leef, &["t1".to_owned()]));
        tokio::spawn(accept_loop(
            listener,
            None,
            true,
            extractor,
            tally.clone(),
            None,
        ));

        let config = SyslogConfig {
            host: "127.0.0.1".into(),
            port,
            protocol: Protocol::Relp,
            framing: Framing::Lf,
            format: F::Leef { delimiter: '\t' },
            header: HeaderFormat::Rfc5424,
            facility: 1,
            app_name: "lookout-mra".into(),
            header_time: HeaderTime::Event,
            hostname: "h".into(),
            custom_identifier: None,
            max_message_size: 65536,
            tls: TlsConfig {
                ca_file: None,
                client_auth: None,
                verify: true,
                server_name: "localhost".into(),
            },
            relp_window: 128,
            max_events_per_second: 0,
        };
        let connector = Connector::new(&config).expect("valid");
        let mut session = RelpSession::open(&connector, 128).await.expect("open");
        for i in 0..1000u32 {
            let record = format!(
                "<14>1 - h app - - - LEEF:2.0|Lookout|MRAv2|2.0|THREAT|lookoutId=00000000-0000-0000-0000-{i:012}\tx=1"
            );
            session.send(record.as_bytes()).await.expect("send");
        }
        let mut answers = Vec::new();
        while answers.len() < 1000 {
            session.read_answers().await.expect("answers");
            answers.extend(session.take_answers());
        }
        assert!(answers.iter().all(|(_, a)| *a == Answer::Accepted));
        assert!(session.close(Duration::from_secs(2)).await.is_empty());
        let tally = lock(&tally);
        assert_eq!(
            (tally.records, tally.malformed, tally.duplicates),
            (1000, 0, 0)
        );
        assert_eq!(tally.ids[0].len(), 1000);
    }

    #[test]
    fn uuids_parse() {
        assert_eq!(
            parse_uuid(b"01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"),
            Some(0x01a1aac4_759e_7c9d_bf7a_861b26a9b1a3)
        );
        assert_eq!(parse_uuid(b"01a1aac4x759e-7c9d-bf7a-861b26a9b1a3"), None);
    }
}

/// The HEC mode: an HTTP server that takes event requests and counts their envelopes.
mod hec {
    use super::{Extractor, Record, Shared, Window, lock, now_us, tally_records};
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use memchr::memmem::Finder;
    use std::io::Read as _;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    #[derive(Clone)]
    struct Ctx {
        extractor: Arc<Extractor>,
        tally: Shared,
        latency: Option<Window>,
    }

    pub async fn serve(
        listener: TcpListener,
        extractor: Arc<Extractor>,
        tally: Shared,
        latency: Option<Window>,
    ) {
        let app = axum::Router::new()
            .route("/services/collector/event", post(event))
            .with_state(Ctx {
                extractor,
                tally,
                latency,
            });
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("bench_receiver: hec server: {error}");
        }
    }

    async fn event(
        State(ctx): State<Ctx>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, &'static str) {
        let arrived_us = now_us();
        let gzip = headers
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes() == b"gzip");
        let plain = if gzip {
            let mut out = Vec::with_capacity(body.len() * 6);
            if flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_err()
            {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"text":"Invalid data format","code":6}"#,
                );
            }
            out
        } else {
            body.to_vec()
        };
        lock(&ctx.tally).connections += 1;
        // Envelopes are compact JSON objects back to back: `}{"` occurs only between
        // two of them (inside a string the quote would be escaped).
        let boundary = Finder::new(b"}{\"");
        let mut parsed: Vec<Record> = Vec::new();
        let mut malformed = 0u64;
        let mut start = 0;
        let mut each = |envelope: &[u8]| match ctx.extractor.record(envelope) {
            Some(r) => parsed.push(r),
            None => malformed += 1,
        };
        for at in boundary.find_iter(&plain) {
            each(&plain[start..=at]);
            start = at + 1;
        }
        if start < plain.len() {
            each(&plain[start..]);
        }
        tally_records(
            &ctx.tally,
            &mut parsed,
            malformed,
            plain.len() as u64,
            arrived_us,
            ctx.latency,
        );
        (StatusCode::OK, r#"{"text":"Success","code":0}"#)
    }
}
