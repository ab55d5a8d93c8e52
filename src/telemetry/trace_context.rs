//! W3C trace context: the trace a request belongs to, and the `traceparent` each upstream
//! call carries (a new span id per call, the trace id of the caller when it sent one).

/// The trace of one request.
#[derive(Debug, Clone)]
pub struct TraceContext {
    pub trace_id: String,
    /// The trace flags (`0x01` sampled); the caller's choice when it sent a `traceparent`.
    flags: u8,
    /// The caller's span, as an OpenTelemetry parent, when it sent a valid `traceparent`.
    remote_parent: Option<opentelemetry::Context>,
}

impl PartialEq for TraceContext {
    fn eq(&self, other: &Self) -> bool {
        self.trace_id == other.trace_id && self.flags == other.flags
    }
}

impl TraceContext {
    /// Continues an incoming `traceparent` when it is valid, else starts a trace whose id is
    /// the request id when that is a valid trace id (so logs and traces join), else random.
    pub fn from_request(traceparent: Option<&str>, request_id: &str) -> Self {
        if let Some((trace_id, parent_id, flags)) = traceparent.and_then(parse) {
            let remote_parent = remote_context(&trace_id, &parent_id, flags);
            return Self { trace_id, flags, remote_parent };
        }
        let trace_id = if is_hex_id(request_id, 32) {
            request_id.to_string()
        } else {
            format!("{:032x}", nonzero_random(rand::random::<u128>))
        };
        Self { trace_id, flags: 0x01, remote_parent: None }
    }

    /// A `traceparent` for one upstream call (a fresh span id).
    pub fn child_traceparent(&self) -> String {
        let mut text = Vec::with_capacity(55);
        text.extend_from_slice(b"00-");
        text.extend_from_slice(self.trace_id.as_bytes());
        text.push(b'-');
        super::text::push_hex(&mut text, u128::from(nonzero_random(rand::random::<u64>)), 16);
        text.push(b'-');
        super::text::push_hex(&mut text, u128::from(self.flags), 2);
        // Only ASCII went in (the trace id was checked to be hex).
        String::from_utf8(text).unwrap_or_default()
    }
}

/// A random id; all zeros is invalid in W3C trace context.
fn nonzero_random<T: Default + PartialEq>(random: impl Fn() -> T) -> T {
    loop {
        let value = random();
        if value != T::default() {
            return value;
        }
    }
}

fn is_hex_id(text: &str, length: usize) -> bool {
    text.len() == length
        && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0')
}

fn remote_context(trace_id: &str, parent_id: &str, flags: u8) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    let span_context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(parent_id).ok()?,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    Some(opentelemetry::Context::new().with_remote_span_context(span_context))
}

/// `00-<32 hex>-<16 hex>-<2 hex>` (lowercase, not all zeros).
fn parse(traceparent: &str) -> Option<(String, String, u8)> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || !is_hex_id(trace_id, 32) || !is_hex_id(parent_id, 16) {
        return None;
    }
    if flags.len() != 2 || !flags.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((trace_id.to_string(), parent_id.to_string(), u8::from_str_radix(flags, 16).ok()?))
}

static OTEL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks OTLP export as on (set once by the logging setup).
pub fn enable_otel() {
    OTEL.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn otel_enabled() -> bool {
    OTEL.load(std::sync::atomic::Ordering::Relaxed)
}

/// The request span for `context`: with OTLP on, it continues the caller's trace (when there
/// was one) and `context` takes the exported trace id so logs, audit and traces join.
pub fn request_span(context: &mut TraceContext, request_id: &str) -> tracing::Span {
    let span = tracing::info_span!("request", request_id, trace_id = tracing::field::Empty);
    if otel_enabled() {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if let Some(parent) = &context.remote_parent {
            let _ = span.set_parent(parent.clone());
        }
        let exported = span.context().span().span_context().trace_id();
        if exported != opentelemetry::trace::TraceId::INVALID {
            context.trace_id = exported.to_string();
        }
    }
    span.record("trace_id", context.trace_id.as_str());
    span
}

impl TraceContext {
    /// Whether this continues a caller's valid `traceparent`.
    pub fn is_continued(&self) -> bool {
        self.remote_parent.is_some()
    }
}

/// Makes `span` continue `context`'s caller trace (OTLP on): a trace named elsewhere than the
/// HTTP headers (the 2026-07-28 `_meta`).
pub fn continue_trace(span: &tracing::Span, context: &TraceContext) {
    if otel_enabled()
        && let Some(parent) = &context.remote_parent
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(parent.clone());
    }
}

/// A `traceparent` naming `span` itself, when OTLP is on (so the upstream's spans hang
/// under ours); `None` otherwise.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !otel_enabled() {
        return None;
    }
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!("00-{}-{}-{:02x}", span_context.trace_id(), span_context.span_id(), span_context.trace_flags().to_u8())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incoming_trace_is_continued_with_a_new_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::from_request(Some(incoming), "whatever");
        assert!(context.remote_parent.is_some());
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
