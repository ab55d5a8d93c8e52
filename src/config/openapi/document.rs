//! Reading an OpenAPI document: from a file, or over HTTP(S) with a size cap and a
//! deadline, then parsed as JSON or YAML into a `serde_json::Value` and its version told.
//!
//! The fetch is blocking and runs on a thread of its own: the loader runs on the main thread
//! at startup and on a `spawn_blocking` thread on reload, never on an async worker, and a
//! fresh thread keeps reqwest's blocking client out of any runtime context it could trip on.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// Documents larger than this are refused (the largest public API descriptions, e.g.
/// GitHub's, are about 10 MiB as JSON).
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Which specification a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Swagger2,
    OpenApi30,
    OpenApi31,
}

/// Reads `path` (bounded by [`MAX_DOCUMENT_BYTES`]).
pub fn read_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot be read: {error}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot be read: {error}"))?;
    into_text(bytes)
}

/// GETs `url` within `timeout`, following no redirect, refusing a non-2xx status and a body
/// over [`MAX_DOCUMENT_BYTES`].
pub fn fetch(url: &url::Url, timeout: Duration) -> Result<String, String> {
    let url = url.clone();
    std::thread::scope(|scope| {
        scope
            .spawn(move || fetch_here(&url, timeout))
            .join()
            .unwrap_or_else(|_| Err("cannot be fetched: the fetch thread failed".to_string()))
    })
}

fn fetch_here(url: &url::Url, timeout: Duration) -> Result<String, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| format!("cannot be fetched: no HTTP client: {error}"))?;
    let response = client
        .get(url.clone())
        .header(http::header::ACCEPT, "application/json, application/yaml;q=0.9, */*;q=0.1")
        .send()
        .map_err(|error| format!("cannot be fetched: {}", without_url(&error)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status} when fetched"));
    }
    let mut bytes = Vec::new();
    response
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot be read: {error}"))?;
    into_text(bytes)
}

/// reqwest's error text without the URL (it is printed once, as the document's name).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" ({url})"), "").replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn into_text(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8".to_string())
}

/// Parses JSON (a document starting with `{`) or YAML, a leading byte-order mark skipped
/// (ASP.NET writes one).
pub fn parse(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|error| format!("is not valid JSON: {error}"));
    }
    let budget = serde_saphyr::budget! {
        max_depth: 256,
        max_nodes: 5_000_000,
        max_aliases: 1000,
        max_anchors: 1000,
        max_documents: 1,
    };
    let options = serde_saphyr::options! { budget: budget };
    serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        let rendered = error.without_snippet().render_with_formatter(&serde_saphyr::UserMessageFormatter);
        let first = rendered.lines().find(|line| !line.trim().is_empty()).unwrap_or_default().trim().to_string();
        format!("is not valid YAML: {first}")
    })
}

/// The document's version, from `swagger: "2.0"` or `openapi: 3.0.x | 3.1.x`.
pub fn version(document: &Value) -> Result<Version, String> {
    if !document.is_object() {
        return Err("is not an OpenAPI document (not an object)".to_string());
    }
    if let Some(swagger) = document.get("swagger") {
        return match swagger.as_str() {
            Some("2.0") => Ok(Version::Swagger2),
            _ => Err(format!("swagger: {swagger} is not supported; Swagger 2.0, OpenAPI 3.0 and 3.1 are")),
        };
    }
    match document.get("openapi").and_then(Value::as_str) {
        Some(version) if version.starts_with("3.0") => Ok(Version::OpenApi30),
        Some(version) if version.starts_with("3.1") => Ok(Version::OpenApi31),
        Some(version) => Err(format!("openapi: {version} is not supported; Swagger 2.0, OpenAPI 3.0 and 3.1 are")),
        None => Err("is not an OpenAPI document: it has neither `openapi` nor `swagger`".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_yaml_and_a_byte_order_mark_parse_alike() {
        let json = parse("\u{feff}{\"openapi\": \"3.0.4\", \"paths\": {}}").expect("json");
        let yaml = parse("openapi: 3.0.4\npaths: {}\n").expect("yaml");
        assert_eq!(json, yaml);
        assert_eq!(version(&json), Ok(Version::OpenApi30));
        let responses = parse("responses:\n  200:\n    description: ok\n").expect("integer keys");
        assert!(responses["responses"]["200"].is_object(), "{responses}");
    }

    #[test]
    fn versions_are_told_apart_and_others_refused() {
        assert_eq!(version(&serde_json::json!({"swagger": "2.0"})), Ok(Version::Swagger2));
        assert_eq!(version(&serde_json::json!({"openapi": "3.1.1"})), Ok(Version::OpenApi31));
        assert!(version(&serde_json::json!({"openapi": "4.0.0"})).is_err());
        assert!(version(&serde_json::json!({"swagger": "1.2"})).is_err());
        assert!(version(&serde_json::json!({"info": {}})).is_err());
        assert!(parse("{not json").expect_err("bad").contains("JSON"));
    }
}
