//! MCP content items from a REST body and its media type (DESIGN.md §6.4, rich content):
//! `image/*` → `image`, `audio/*` → `audio`, text types → `text`, anything else → an embedded
//! `resource` with a base64 `blob`. Binary data is never decoded as text: a lossy UTF-8 view
//! of a PNG destroys it.
//!
//! One REST reply is one body, so several content items need a multipart reply
//! (`multipart/mixed` or `multipart/related`, RFC 2046): each part becomes one item by its own
//! `Content-Type` (RFC 2046's default for a part without one is `text/plain`), in order. A
//! part with a `Content-Location` becomes an embedded `resource` with that URI (`text` for a
//! text type, `blob` otherwise): that header is how HTTP names the resource a body represents
//! (RFC 9110 §8.7). Without one, a resource is named `mcp-edge://tools/{tool}/result` (a part:
//! `…/result/{n}`, 1-based), which says where it came from without naming the internal API.

use base64::Engine;
use serde_json::{Map, Value};

/// The most parts a multipart reply may have; past it the reply is refused, not truncated.
pub const MAX_PARTS: usize = 64;

/// How a body of a media type is passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Json,
    Text,
    Image,
    Audio,
    Multipart,
    Binary,
}

/// The media type without parameters, lowercased (`Image/PNG; q=1` → `image/png`).
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// What a body of `content_type` becomes. No content type: text when the bytes are UTF-8,
/// otherwise binary (`application/octet-stream`, RFC 9110 §8.3).
pub fn kind_of(content_type: Option<&str>, body: &[u8]) -> Kind {
    let Some(content_type) = content_type else {
        return if std::str::from_utf8(body).is_ok() { Kind::Text } else { Kind::Binary };
    };
    let media = essence(content_type);
    let (top, sub) = media.split_once('/').unwrap_or((media.as_str(), ""));
    match top {
        _ if media == "application/json" || sub.ends_with("+json") => Kind::Json,
        "text" => Kind::Text,
        "image" => Kind::Image,
        "audio" => Kind::Audio,
        "multipart" if matches!(sub, "mixed" | "related") => Kind::Multipart,
        "application"
            if sub.ends_with("+xml")
                || matches!(
                    sub,
                    "xml" | "javascript" | "ecmascript" | "x-www-form-urlencoded" | "yaml" | "x-yaml" | "toml" | "sql"
                ) =>
        {
            Kind::Text
        }
        _ => Kind::Binary,
    }
}

fn item(kind: &str, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let mut object = Map::from_iter([("type".to_string(), Value::from(kind))]);
    object.extend(fields.into_iter().map(|(key, value)| (key.to_string(), value)));
    Value::Object(object)
}

/// A `text` content item.
pub fn text(text: String) -> Value {
    item("text", [("text", Value::String(text))])
}

fn base64(body: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(body))
}

/// An embedded resource: `text` for a text type, a base64 `blob` otherwise.
fn resource(uri: &str, mime_type: &str, body: &[u8], as_text: bool) -> Value {
    let mut resource =
        Map::from_iter([("uri".to_string(), Value::from(uri)), ("mimeType".to_string(), Value::from(mime_type))]);
    if as_text {
        resource.insert("text".to_string(), Value::String(String::from_utf8_lossy(body).into_owned()));
    } else {
        resource.insert("blob".to_string(), base64(body));
    }
    item("resource", [("resource", Value::Object(resource))])
}

/// The content item for one body that is not JSON and not multipart (those are the caller's).
/// `uri` names it if it becomes a resource.
pub fn single(kind: Kind, content_type: Option<&str>, body: &[u8], uri: &str) -> Value {
    let mime_type = content_type.map_or_else(|| "application/octet-stream".to_string(), essence);
    match kind {
        Kind::Image => item("image", [("data", base64(body)), ("mimeType", Value::String(mime_type))]),
        Kind::Audio => item("audio", [("data", base64(body)), ("mimeType", Value::String(mime_type))]),
        Kind::Binary | Kind::Multipart => resource(uri, &mime_type, body, false),
        Kind::Json | Kind::Text => text(String::from_utf8_lossy(body).into_owned()),
    }
}

/// The content items of a multipart reply, one per part; `Err` says why the body is not one.
pub fn multipart(content_type: &str, body: &[u8], uri: &str) -> Result<Vec<Value>, &'static str> {
    let boundary = boundary(content_type).ok_or("the multipart reply names no boundary")?;
    let parts = split_parts(body, boundary.as_bytes())?;
    let mut items = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let (headers, body) = split_head(part);
        let part_type = header(headers, "content-type").unwrap_or("text/plain");
        let kind = kind_of(Some(part_type), body);
        if kind == Kind::Multipart {
            return Err("a multipart reply nests another multipart body");
        }
        let item = match header(headers, "content-location") {
            Some(location) => resource(location, &essence(part_type), body, matches!(kind, Kind::Json | Kind::Text)),
            None => single(kind, Some(part_type), body, &format!("{uri}/{}", index + 1)),
        };
        items.push(item);
    }
    Ok(items)
}

/// The `boundary` parameter (quoted or not).
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        // RFC 2046 §5.1.1: 1 to 70 characters.
        (!value.is_empty() && value.len() <= 70).then(|| value.to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The parts between the delimiters (RFC 2046 §5.1.1): the first delimiter may open the body,
/// later ones follow a CRLF; the preamble and the epilogue are ignored; a missing close
/// delimiter means the reply was cut.
fn split_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Result<Vec<&'a [u8]>, &'static str> {
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut rest = if body.starts_with(&delimiter[2..]) {
        &body[delimiter.len() - 2..]
    } else {
        let at = find(body, &delimiter).ok_or("the multipart reply has no part")?;
        &body[at + delimiter.len()..]
    };
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return if parts.is_empty() { Err("the multipart reply has no part") } else { Ok(parts) };
        }
        // Transport padding, then the CRLF that ends the delimiter line.
        let line_end = find(rest, b"\r\n").ok_or("the multipart reply is cut short")?;
        if rest[..line_end].iter().any(|byte| !matches!(byte, b' ' | b'\t')) {
            return Err("the multipart reply has text after a delimiter");
        }
        rest = &rest[line_end + 2..];
        let end = find(rest, &delimiter).ok_or("the multipart reply is cut short")?;
        if parts.len() == MAX_PARTS {
            return Err("the multipart reply has more than 64 parts");
        }
        parts.push(&rest[..end]);
        rest = &rest[end + delimiter.len()..];
    }
}

/// A part's header block and its body.
fn split_head(part: &[u8]) -> (&[u8], &[u8]) {
    if part.starts_with(b"\r\n") {
        return (&[], &part[2..]);
    }
    match find(part, b"\r\n\r\n") {
        Some(at) => (&part[..at], &part[at + 4..]),
        None => (part, &[]),
    }
}

/// A header of a part's header block, trimmed.
fn header<'a>(headers: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(headers).ok()?.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim()).filter(|value| !value.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn media_types_choose_the_item() {
        assert_eq!(kind_of(Some("image/png"), b""), Kind::Image);
        assert_eq!(kind_of(Some("Audio/WAV; rate=8000"), b""), Kind::Audio);
        assert_eq!(kind_of(Some("application/problem+json"), b""), Kind::Json);
        assert_eq!(kind_of(Some("text/csv; charset=utf-8"), b""), Kind::Text);
        assert_eq!(kind_of(Some("application/atom+xml"), b""), Kind::Text);
        assert_eq!(kind_of(Some("application/pdf"), b""), Kind::Binary);
        assert_eq!(kind_of(Some("multipart/mixed; boundary=x"), b""), Kind::Multipart);
        assert_eq!(kind_of(Some("multipart/form-data; boundary=x"), b""), Kind::Binary);
        assert_eq!(kind_of(None, b"plain words"), Kind::Text);
        assert_eq!(kind_of(None, &[0xff, 0xfe, 0x00]), Kind::Binary);
    }

    #[test]
    fn binary_bodies_keep_their_bytes() {
        let bytes = [0x89, b'P', b'N', b'G', 0xff, 0x00];
        let image = single(Kind::Image, Some("image/png"), &bytes, "u");
        assert_eq!(image, json!({"type": "image", "data": "iVBOR/8A", "mimeType": "image/png"}));
        let blob = single(Kind::Binary, None, &bytes, "mcp-edge://tools/t/result");
        assert_eq!(blob["resource"]["blob"], "iVBOR/8A");
        assert_eq!(blob["resource"]["mimeType"], "application/octet-stream");
        assert_eq!(blob["resource"]["uri"], "mcp-edge://tools/t/result");
    }

    #[test]
    fn multipart_parts_become_items_in_order() {
        let body = b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\r\n--b1 \r\nContent-Type: application/json\r\n\
Content-Location: test://r\r\n\r\n{\"a\":1}\r\n--b1\r\n\r\nno headers\r\n--b1--\r\nepilogue";
        let items = multipart("multipart/mixed; boundary=\"b1\"", body, "mcp-edge://tools/t/result").expect("parts");
        assert_eq!(items[0], json!({"type": "text", "text": "hello"}));
        assert_eq!(items[1]["type"], "image");
        assert_eq!(items[1]["data"], "iVBORw==");
        assert_eq!(
            items[2],
            json!({"type": "resource", "resource": {"uri": "test://r", "mimeType": "application/json", "text": "{\"a\":1}"}})
        );
        assert_eq!(items[3], json!({"type": "text", "text": "no headers"}));
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn broken_multipart_bodies_are_refused() {
        let ct = "multipart/mixed; boundary=b";
        assert!(multipart("multipart/mixed", b"--b\r\n\r\nx\r\n--b--", "u").is_err(), "no boundary");
        assert!(multipart(ct, b"--b\r\n\r\nx", "u").is_err(), "cut short");
        assert!(multipart(ct, b"--b--", "u").is_err(), "no part");
        assert!(multipart(ct, b"nothing here", "u").is_err());
        let nested = b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c--\r\n--b--";
        assert!(multipart(ct, nested, "u").is_err(), "nested");
        let many = format!("{}--b--", "--b\r\n\r\nx\r\n".repeat(MAX_PARTS + 1));
        assert!(multipart(ct, many.as_bytes(), "u").is_err(), "too many parts");
    }
}
