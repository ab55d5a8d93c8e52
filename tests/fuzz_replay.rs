//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets'
//! own bodies (`fuzz/src/lib.rs`), so every `cargo test` re-checks each seed and each crash
//! the fuzzer once found, on stable and without a sanitizer build.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let replayed = harness::replay(&corpus, body).unwrap_or_else(|error| panic!("{}: {error}", corpus.display()));
    assert!(replayed > 0, "{} holds no seeds", corpus.display());
}

#[test]
fn policy_corpus_replays() {
    replay("policy", harness::policy);
}

#[test]
fn jsonrpc_corpus_replays() {
    replay("jsonrpc", harness::jsonrpc);
}

#[test]
fn forwarded_for_corpus_replays() {
    replay("forwarded_for", harness::forwarded_for);
}

#[test]
fn cors_corpus_replays() {
    replay("cors", harness::cors);
}

#[test]
fn template_corpus_replays() {
    replay("template", harness::template);
}

#[test]
fn auth_corpus_replays() {
    replay("auth", harness::auth);
}

#[test]
fn redact_corpus_replays() {
    replay("redact", harness::redact);
}
