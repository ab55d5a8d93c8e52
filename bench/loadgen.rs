//! An open-loop load generator for the benchmark (`bench/run.sh`): sends requests at a fixed
//! rate and measures each latency from the moment the request was *scheduled*, so a stalled
//! server is charged for the requests it delayed (no coordinated omission). Prints JSON.
//!
//! mcp-edge-loadgen --url URL --rate 1000 --seconds 5 --connections 16 [--ca PEM] [--http2]
//!         [--header 'Name: value']... [--method POST --body TEXT] [--samples FILE]
//!
//! `--samples` also writes every latency (microseconds, one per line, sorted) so runs can be
//! pooled: a p99 from one 4-second run rests on its 40 slowest requests.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct Options {
    url: String,
    rate: u64,
    seconds: u64,
    connections: usize,
    ca: Option<String>,
    http2: bool,
    headers: Vec<(String, String)>,
    method: reqwest::Method,
    body: Option<String>,
    samples: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        url: String::new(),
        rate: 1000,
        seconds: 5,
        connections: 16,
        ca: None,
        http2: false,
        headers: Vec::new(),
        method: reqwest::Method::GET,
        body: None,
        samples: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match flag.as_str() {
            "--url" => options.url = value(),
            "--rate" => options.rate = value().parse().expect("rate"),
            "--seconds" => options.seconds = value().parse().expect("seconds"),
            "--connections" => options.connections = value().parse().expect("connections"),
            "--ca" => options.ca = Some(value()),
            "--http2" => options.http2 = true,
            "--header" => {
                let header = value();
                let (name, value) = header.split_once(':').expect("Name: value");
                options.headers.push((name.trim().to_string(), value.trim().to_string()));
            }
            "--method" => options.method = value().parse().expect("method"),
            "--body" => options.body = Some(value()),
            "--samples" => options.samples = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

fn client(options: &Options) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder =
        reqwest::Client::builder().pool_max_idle_per_host(options.connections).timeout(Duration::from_secs(10));
    if let Some(ca) = &options.ca {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("CA file") {
            roots.add(cert.expect("PEM")).expect("CA");
        }
        let mut tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        tls.alpn_protocols = if options.http2 { vec![b"h2".to_vec()] } else { vec![b"http/1.1".to_vec()] };
        builder = builder.tls_backend_preconfigured(tls);
    }
    builder = if options.http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
    builder.build().expect("client")
}

/// Releases request slots at their scheduled instants from a dedicated thread. tokio's timer
/// ticks in whole milliseconds, which would add up to 1 ms of pacing error to every latency
/// measured from the schedule; this thread sleeps until just before each slot and spins the
/// last stretch, so a slot is released within microseconds of its time.
fn pace(start: Instant, interval: Duration, total: u64) -> mpsc::UnboundedReceiver<Instant> {
    const SPIN: Duration = Duration::from_micros(100);
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for index in 0..total {
            let scheduled = start + interval * index as u32;
            let now = Instant::now();
            if scheduled > now + SPIN {
                std::thread::sleep(scheduled - now - SPIN);
            }
            while Instant::now() < scheduled {
                std::hint::spin_loop();
            }
            if sender.send(scheduled).is_err() {
                return;
            }
        }
    });
    receiver
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = Arc::new(options());
    let client = client(&options);
    let total = options.rate * options.seconds;
    let interval = Duration::from_secs_f64(1.0 / options.rate as f64);
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let schedule = Arc::new(tokio::sync::Mutex::new(pace(start, interval, total)));
    let mut workers = Vec::new();
    for _ in 0..options.connections {
        let (client, options, schedule, errors) =
            (client.clone(), Arc::clone(&options), Arc::clone(&schedule), Arc::clone(&errors));
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
            loop {
                // The lock is held only while waiting for the next slot, so the idle
                // connections queue up behind it in turn.
                let Some(scheduled) = schedule.lock().await.recv().await else { break };
                let mut request = client.request(options.method.clone(), &options.url);
                for (name, value) in &options.headers {
                    request = request.header(name, value);
                }
                if let Some(body) = &options.body {
                    request = request.body(body.clone());
                }
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        *statuses.entry(status).or_default() += 1;
                        latencies.push(scheduled.elapsed());
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (latencies, statuses)
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for worker in workers {
        let (worker_latencies, worker_statuses) = worker.await.expect("worker");
        latencies.extend(worker_latencies);
        for (status, count) in worker_statuses {
            *statuses.entry(status).or_default() += count;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let report = serde_json::json!({
        "requests": latencies.len(),
        "errors": errors.load(Ordering::Relaxed),
        "statuses": statuses,
        "achieved_rps": latencies.len() as f64 / elapsed,
        "p50_ms": percentile(&latencies, 0.50),
        "p90_ms": percentile(&latencies, 0.90),
        "p99_ms": percentile(&latencies, 0.99),
        "p999_ms": percentile(&latencies, 0.999),
        "max_ms": latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1000.0),
    });
    if let Some(path) = &options.samples {
        let lines: String = latencies.iter().map(|latency| format!("{}\n", latency.as_micros())).collect();
        std::fs::write(path, lines).expect("samples file");
    }
    println!("{report}");
}
