//! Mints the benchmark's JWTs ahead of the timed runs (`bench/run.sh`, the JWT scenario):
//! `--count` distinct valid RS256 tokens, one a line, each with its own `sub` and `jti`,
//! `iat` just past and `exp` an hour ahead, signed on every core.
//!
//! mcp-edge-mint --key PEM --kid KID --issuer ISS --audience AUD --count N --out FILE [--prefix P]
//!
//! An RSA-2048 signature costs about a millisecond, a thousand times a verification's share
//! of it, so minting is the slow part of the scenario and happens before anything is timed.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

struct Options {
    key: String,
    kid: String,
    issuer: String,
    audience: String,
    count: usize,
    out: String,
    prefix: String,
}

fn options() -> Options {
    let mut options = Options {
        key: String::new(),
        kid: String::new(),
        issuer: String::new(),
        audience: String::new(),
        count: 1,
        out: String::new(),
        prefix: "bench".to_string(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match flag.as_str() {
            "--key" => options.key = value(),
            "--kid" => options.kid = value(),
            "--issuer" => options.issuer = value(),
            "--audience" => options.audience = value(),
            "--count" => options.count = value().parse().expect("count"),
            "--out" => options.out = value(),
            "--prefix" => options.prefix = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!options.key.is_empty() && !options.out.is_empty(), "--key and --out are required");
    options
}

fn main() {
    // The edge's own provider (ring): jsonwebtoken has no backend of its own here.
    mcp_edge::crypto::install_providers();
    let options = options();
    let key = EncodingKey::from_rsa_pem(&std::fs::read(&options.key).expect("key file")).expect("an RSA key");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(options.kid.clone());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    // Thread t signs tokens t, t + threads, ...; they are written back in index order.
    let shares: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let (options, key, header) = (&options, &key, &header);
                scope.spawn(move || {
                    (thread..options.count)
                        .step_by(threads)
                        .map(|index| {
                            let claims = serde_json::json!({
                                "iss": options.issuer,
                                "aud": options.audience,
                                "sub": format!("{}-user-{index}", options.prefix),
                                "jti": format!("{}-{index:08}", options.prefix),
                                "iat": now - 10,
                                "exp": now + 3600,
                                "scope": "items:read",
                            });
                            jsonwebtoken::encode(header, &claims, key).expect("sign")
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("signing thread")).collect()
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(&options.out).expect("output file"));
    for index in 0..options.count {
        writeln!(out, "{}", shares[index % threads][index / threads]).expect("write");
    }
    out.flush().expect("write");
    println!(
        "{{\"tokens\":{},\"threads\":{threads},\"seconds\":{:.2}}}",
        options.count,
        started.elapsed().as_secs_f64()
    );
}
