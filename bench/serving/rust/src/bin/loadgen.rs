//! The serving benchmark's load generator, on tonic's client: one load level against one
//! server, printed as one JSON object.
//!
//! - `--mode closed --concurrency N`: N requests in flight; each sends its next request when
//!   its answer arrives. Latency runs from the send.
//! - `--mode open --rate R`: requests start at Poisson arrival times of rate R, whether or not
//!   earlier ones were answered. Latency runs from each request's *intended* start, so a
//!   server (or a generator) that falls behind shows its queueing in the latencies instead of
//!   slowing the arrivals down (no coordinated omission). A scheduler thread with a 1 µs timer
//!   slack sleeps until each arrival; how late each start was is reported as `send_lag_us`.
//!
//! A level stops at `--seconds` or after `--max-requests`, whichever comes first; every
//! request has a deadline (`--deadline-ms`), from its send in a closed loop and from its
//! intended start in an open one (a request the generator could not start in time expires
//! unsent), so that a level ends within its seconds and one deadline. Latencies go into an HDR histogram (1 µs to 60 s,
//! 3 significant digits); errors are counted by gRPC status. The generator's own CPU time
//! over the level tells whether its cores, not the server, were the limit.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bench_serving::proto::Points;
use bench_serving::proto::k_means_client::KMeansClient;
use bench_serving::{allowed_cores, cpu_seconds, die_with_parent, pin_to_cpus};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

const HISTOGRAM_MAX_US: u64 = 60_000_000;
/// Distinct request bodies the generator cycles through.
const DISTINCT_REQUESTS: usize = 64;

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    Closed,
    Open,
}

#[derive(Parser)]
struct Options {
    /// The server, host:port (127.0.0.1 only in the benchmark).
    #[arg(long)]
    target: String,
    /// Points to send: little-endian float64, row-major.
    #[arg(long)]
    queries: PathBuf,
    #[arg(long)]
    features: usize,
    /// Points per request.
    #[arg(long)]
    batch: usize,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Closed loop: requests in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Open loop: mean arrivals per second.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long)]
    seconds: f64,
    #[arg(long)]
    max_requests: u64,
    #[arg(long, default_value_t = 2_000)]
    deadline_ms: u64,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Cores to run on, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
}

/// What a set of requests came to.
struct Tally {
    latency_us: Histogram<u64>,
    send_lag_us: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    sent: u64,
    ok: u64,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        let histogram = || Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("bounds");
        Tally {
            latency_us: histogram(),
            send_lag_us: histogram(),
            errors: BTreeMap::new(),
            sent: 0,
            ok: 0,
            last_done: None,
        }
    }

    /// One request, started (or due to start) at `from` and ended at `done`.
    fn record(&mut self, from: Instant, done: Instant, outcome: Result<(), String>) {
        self.sent += 1;
        self.last_done = self.last_done.max(Some(done));
        match outcome {
            Ok(()) => {
                self.ok += 1;
                let micros = done.saturating_duration_since(from).as_micros() as u64;
                self.latency_us.saturating_record(micros.max(1));
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        self.send_lag_us
            .add(&other.send_lag_us)
            .expect("same bounds");
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.sent += other.sent;
        self.ok += other.ok;
        self.last_done = self.last_done.max(other.last_done);
    }
}

/// `deadline-exceeded` for `Code::DeadlineExceeded`.
fn error_kind(code: Code) -> String {
    let mut kind = String::new();
    for (index, letter) in format!("{code:?}").chars().enumerate() {
        if letter.is_uppercase() && index > 0 {
            kind.push('-');
        }
        kind.push(letter.to_ascii_lowercase());
    }
    kind
}

/// One request, which must be answered by `expires`.
async fn call(
    mut client: KMeansClient<Channel>,
    points: Points,
    expires: Instant,
) -> Result<(), String> {
    let left = expires.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(error_kind(Code::DeadlineExceeded));
    }
    let expected = points.values.len() / (points.n_features.max(1) as usize);
    let mut request = Request::new(points);
    request.set_timeout(left); // the server may give up too
    match tokio::time::timeout(left, client.predict(request)).await {
        Err(_) => Err(error_kind(Code::DeadlineExceeded)),
        Ok(Err(status)) => Err(error_kind(status.code())),
        Ok(Ok(response)) if response.get_ref().labels.len() == expected => Ok(()),
        Ok(Ok(_)) => Err("wrong-label-count".into()),
    }
}

/// Request bodies cut from the query points, `batch` points each, cycling through them.
fn requests(options: &Options) -> Result<Vec<Points>, Box<dyn Error>> {
    let bytes = std::fs::read(&options.queries)?;
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|chunk| f64::from_le_bytes(chunk.try_into().expect("8 bytes")))
        .collect();
    let points = values.len() / options.features;
    if points == 0 || options.batch == 0 {
        return Err("no query points, or a batch of 0".into());
    }
    let distinct = (points / options.batch).clamp(1, DISTINCT_REQUESTS);
    Ok((0..distinct)
        .map(|index| {
            let rows = (0..options.batch).map(|row| (index * options.batch + row) % points);
            Points {
                n_features: options.features as u32,
                values: rows
                    .flat_map(|row| values[row * options.features..][..options.features].to_vec())
                    .collect(),
            }
        })
        .collect())
}

async fn connect(options: &Options) -> Result<Vec<KMeansClient<Channel>>, Box<dyn Error>> {
    let mut clients = Vec::new();
    for _ in 0..options.connections.max(1) {
        let channel = Endpoint::from_shared(format!("http://{}", options.target))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        clients.push(KMeansClient::new(channel));
    }
    Ok(clients)
}

/// How a level ended: what was sent, when, and what bound stopped it.
struct Level {
    tally: Tally,
    start: Instant,
    /// Open loop: when the last request was due; closed loop: the start.
    last_intended: Instant,
    stopped_by: &'static str,
}

fn closed_loop(
    runtime: &Runtime,
    clients: &[KMeansClient<Channel>],
    requests: &Arc<Vec<Points>>,
    options: &Options,
) -> Level {
    let deadline = Duration::from_millis(options.deadline_ms);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(options.seconds);
    let budget = Arc::new(AtomicU64::new(options.max_requests));
    let workers: Vec<_> = (0..options.concurrency.max(1))
        .map(|worker| {
            let client = clients[worker % clients.len()].clone();
            let (requests, budget) = (requests.clone(), budget.clone());
            let stride = options.concurrency.max(1);
            runtime.spawn(async move {
                let mut tally = Tally::new();
                let mut next = worker;
                while Instant::now() < end
                    && budget
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let points = requests[next % requests.len()].clone();
                    next += stride;
                    let sent = Instant::now();
                    let outcome = call(client.clone(), points, sent + deadline).await;
                    tally.record(sent, Instant::now(), outcome);
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::new();
    for worker in workers {
        tally.merge(
            runtime
                .block_on(worker)
                .expect("a closed-loop worker panicked"),
        );
    }
    let stopped_by = if budget.load(Ordering::Acquire) == 0 {
        "requests"
    } else {
        "seconds"
    };
    Level {
        tally,
        start,
        last_intended: start,
        stopped_by,
    }
}

fn open_loop(
    runtime: &Runtime,
    clients: &[KMeansClient<Channel>],
    requests: &Arc<Vec<Points>>,
    options: &Options,
) -> Result<Level, Box<dyn Error>> {
    let deadline = Duration::from_millis(options.deadline_ms);
    let gaps = Exp::new(options.rate)?;
    let (sender, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let handle = runtime.handle().clone();
    let (clients, requests) = (clients.to_vec(), requests.clone());
    let (seconds, max_requests, seed) = (options.seconds, options.max_requests, options.seed);
    let start = Instant::now();
    let scheduler = std::thread::spawn(move || {
        // SAFETY: a plain system call; it sets this thread's sleep precision to 1 µs.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000) };
        let end = start + Duration::from_secs_f64(seconds);
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut intended, mut scheduled) = (start, 0_u64);
        let stopped_by = loop {
            if scheduled == max_requests {
                break "requests";
            }
            let next = intended + Duration::from_secs_f64(gaps.sample(&mut rng));
            if next > end {
                break "seconds";
            }
            intended = next;
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            let now = Instant::now();
            let lag = now.saturating_duration_since(intended);
            // A deadline runs from the intended start too: a generator that fell that far
            // behind counts the request as expired, and holds no more of them in memory.
            let expires = intended + deadline;
            let index = scheduled as usize;
            scheduled += 1;
            if now >= expires {
                let _ = sender.send((intended, lag, now, Err(error_kind(Code::DeadlineExceeded))));
                continue;
            }
            let client = clients[index % clients.len()].clone();
            let points = requests[index % requests.len()].clone();
            let sender = sender.clone();
            handle.spawn(async move {
                let outcome = call(client, points, expires).await;
                let _ = sender.send((intended, lag, Instant::now(), outcome));
            });
        };
        (intended, stopped_by)
    });
    let mut tally = Tally::new();
    runtime.block_on(async {
        while let Some((intended, lag, done, outcome)) = answers.recv().await {
            let lag_us = lag.as_micros() as u64;
            tally.send_lag_us.saturating_record(lag_us.max(1));
            tally.record(intended, done, outcome);
        }
    });
    let (last_intended, stopped_by) = scheduler.join().map_err(|_| "the scheduler panicked")?;
    Ok(Level {
        tally,
        start,
        last_intended,
        stopped_by,
    })
}

fn percentiles(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": histogram.value_at_quantile(0.50),
        "p90": histogram.value_at_quantile(0.90),
        "p99": histogram.value_at_quantile(0.99),
        "p99_9": histogram.value_at_quantile(0.999),
        "max": histogram.max(),
        "mean": histogram.mean(),
        "count": histogram.len(),
    })
}

fn report(level: &Level, options: &Options, cpu: f64, connect_seconds: f64) -> Value {
    let tally = &level.tally;
    let done = tally
        .last_done
        .unwrap_or(level.start)
        .max(level.last_intended);
    let elapsed = done.duration_since(level.start).as_secs_f64();
    // Offered: the rate requests were started at. Closed loop: over the whole level; open
    // loop: over the span of the arrivals themselves, whatever the answers took.
    let offered_span = match options.mode {
        Mode::Closed => elapsed,
        Mode::Open => level
            .last_intended
            .duration_since(level.start)
            .as_secs_f64(),
    };
    let per_second = |count: u64, span: f64| if span > 0.0 { count as f64 / span } else { 0.0 };
    let cores = allowed_cores();
    json!({
        "mode": if options.mode == Mode::Closed { "closed" } else { "open" },
        "batch": options.batch,
        "concurrency": if options.mode == Mode::Closed { Some(options.concurrency) } else { None },
        "target_rate": if options.mode == Mode::Open { Some(options.rate) } else { None },
        "connections": options.connections.max(1),
        "sent": tally.sent,
        "ok": tally.ok,
        "errors": tally.errors,
        "elapsed_seconds": elapsed,
        "offered_rps": per_second(tally.sent, offered_span),
        "achieved_rps": per_second(tally.ok, elapsed),
        "latency_us": percentiles(&tally.latency_us),
        "send_lag_us": percentiles(&tally.send_lag_us),
        "stopped_by": level.stopped_by,
        "connect_seconds": connect_seconds,
        "client_cpu_seconds": cpu,
        "client_cores": cores,
        "client_utilisation": if elapsed > 0.0 { cpu / (elapsed * cores as f64) } else { 0.0 },
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    die_with_parent();
    let options = Options::parse();
    pin_to_cpus(&options.cpus)?;
    let requests = Arc::new(requests(&options)?);
    let runtime = if allowed_cores() == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    let connecting = Instant::now();
    let clients = runtime
        .block_on(connect(&options))
        .map_err(|error| format!("cannot connect to {}: {error}", options.target))?;
    let connect_seconds = connecting.elapsed().as_secs_f64();
    let cpu_before = cpu_seconds();
    let level = match options.mode {
        Mode::Closed => closed_loop(&runtime, &clients, &requests, &options),
        Mode::Open => open_loop(&runtime, &clients, &requests, &options)?,
    };
    let cpu = cpu_seconds() - cpu_before;
    println!("{}", report(&level, &options, cpu, connect_seconds));
    Ok(())
}
