//! W3C trace context: the trace a request belongs to, and the `traceparent` each upstream
//! call carries (a new span id per call, the trace id of the caller when it sent one).

/// The trace of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    /// `01` sampled, `00` not; the caller's choice when it sent a `traceparent`.
    flags: String,
}

impl TraceContext {
    /// Continues an incoming `traceparent` when it is valid, else starts a trace whose id is
    /// the request id when that is a valid trace id (so logs and traces join), else random.
    pub fn from_request(traceparent: Option<&str>, request_id: &str) -> Self {
        if let Some((trace_id, flags)) = traceparent.and_then(parse) {
            return Self { trace_id, flags };
        }
        let trace_id = if is_hex_id(request_id, 32) { request_id.to_string() } else { random_hex(16) };
        Self { trace_id, flags: "01".to_string() }
    }

    /// A `traceparent` for one upstream call (a fresh span id).
    pub fn child_traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, random_hex(8), self.flags)
    }
}

fn random_hex(bytes: usize) -> String {
    loop {
        let value: String = (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        if value.bytes().any(|b| b != b'0') {
            return value;
        }
    }
}

fn is_hex_id(text: &str, length: usize) -> bool {
    text.len() == length
        && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0')
}

/// `00-<32 hex>-<16 hex>-<2 hex>` (lowercase, not all zeros).
fn parse(traceparent: &str) -> Option<(String, String)> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || !is_hex_id(trace_id, 32) || !is_hex_id(parent_id, 16) {
        return None;
    }
    if flags.len() != 2 || !flags.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((trace_id.to_string(), flags.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incoming_trace_is_continued_with_a_new_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::from_request(Some(incoming), "whatever");
        let child = context.child_traceparent();
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(child.ends_with("-01"));
        assert_ne!(child, incoming);
        assert_eq!(child.len(), 55);
    }

    #[test]
    fn invalid_incoming_traces_start_a_new_one_from_the_request_id() {
        let request_id = "0af7651916cd43dd8448eb211c80319c";
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let context = TraceContext::from_request(Some(bad), request_id);
            assert_eq!(context.trace_id, request_id);
        }
        let context = TraceContext::from_request(None, "not-hex");
        assert_eq!(context.trace_id.len(), 32);
    }
}
