//! Progress and cancellation of a tool call (MCP `notifications/progress`,
//! `notifications/cancelled`).
//!
//! A `tools/call` that carries `_meta.progressToken` from a client that accepts
//! `text/event-stream` is answered with a server-sent event stream instead of one JSON
//! document: the call runs on a task of its own, and while it does the stream carries
//! `notifications/progress` for what actually happens (the call starts, each upstream try
//! "attempt n of m", each wait before a retry, "still waiting" every [`HEARTBEAT`], the
//! upstream's answer), each with a larger `progress` than the one before and no `total` until
//! the last; then the JSON-RPC result as the final event. Without a token, a call that
//! outlives [`STREAM_AFTER`] is streamed too (kept alive by SSE comments, no progress: there is
//! no token to name it by); a quicker one is one JSON document. A client that does not accept
//! the stream gets JSON as before.
//!
//! The call stops, and its upstream request with it (the connection to the API is dropped),
//! when the client goes away (the writer drops the stream, `Sender::closed`) or sends
//! `notifications/cancelled` for the request. Cancellation is keyed by the caller
//! (`Principal::owner_key`), its MCP session and the request id, so one caller cannot cancel
//! another's calls (with `auth.mode: none` every caller is the same one). A cancelled call
//! gets no response, as the spec asks; it leaves a log line, not a `TOOL_EXECUTE` event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::call::PreparedCall;
use super::catalogue::CatalogueTool;
use super::jsonrpc;
use super::observe::Operation;
use super::tool_result::ToolResult;
use crate::request::reply::{EventStream, StreamItem};
use crate::upstream::CallEvent;

/// How often a long call says it is still waiting (and the edge notices a client gone).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Events that may wait unwritten; past it progress notifications are dropped, never the
/// result.
const BACKLOG: usize = 64;

/// The calls running on their own task, by caller, session and request id.
static RUNNING: LazyLock<Mutex<HashMap<String, oneshot::Sender<()>>>> = LazyLock::new(Default::default);

/// Who may cancel a call: the same caller, in the same session, naming the same id.
pub fn key(owner: &str, session: Option<&str>, id: &Value) -> String {
    format!("{owner}\n{}\n{id}", session.unwrap_or_default())
}

/// `notifications/cancelled` for `key`: stops that call if it is still running.
pub fn cancel(key: &str) -> bool {
    let sender = RUNNING.lock().ok().and_then(|mut running| running.remove(key));
    sender.is_some_and(|sender| sender.send(()).is_ok())
}

/// Removes a call from `RUNNING` when its task ends, however it ends.
struct Registration(String);

impl Registration {
    fn new(key: String) -> (Self, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut running) = RUNNING.lock() {
            running.insert(key.clone(), sender);
        }
        (Self(key), receiver)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            running.remove(&self.0);
        }
    }
}

/// The progress notifications of one call.
struct Notifier {
    sender: mpsc::Sender<StreamItem>,
    /// `None`: a call streamed because it outlived [`STREAM_AFTER`]; no progress to report
    /// (there is no token to name it by), only a comment now and then.
    token: Option<Value>,
    progress: AtomicU64,
}

impl Notifier {
    fn send(&self, message: &str, done: bool) {
        let Some(token) = &self.token else { return };
        let progress = self.progress.fetch_add(1, Ordering::Relaxed) + 1;
        let mut params = json!({"progressToken": token, "progress": progress, "message": message});
        if done {
            params["total"] = json!(progress);
        }
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params});
        // A full backlog means the client reads slower than we report: drop the report.
        let _ = self.sender.try_send(StreamItem::Chunk(event(&notification)));
    }

    fn upstream(&self, event: CallEvent) {
        match event {
            CallEvent::Attempt { attempt, of } => {
                self.send(&format!("calling the API (attempt {attempt} of {of})"), false);
            }
            CallEvent::RetryWait { attempt, of, delay } => {
                self.send(&format!("attempt {attempt} of {of} failed; retrying in {} ms", delay.as_millis()), false);
            }
        }
    }
}

/// One SSE event carrying a JSON-RPC message.
fn event(message: &Value) -> Bytes {
    let mut text = String::from("event: message\ndata: ");
    text.push_str(&message.to_string());
    text.push_str("\n\n");
    Bytes::from(text)
}

/// What a streamed call needs besides the call itself.
pub struct Streamed {
    pub tool: Arc<CatalogueTool>,
    /// The JSON-RPC id of the request.
    pub id: Value,
    /// `_meta.progressToken`; `None` for a call streamed because it is slow.
    pub token: Option<Value>,
    /// Cancellation key ([`key`]).
    pub key: String,
    /// Stateless era: the result carries `resultType`.
    pub stateless: bool,
    /// The arguments as sent, for the audit record.
    pub arguments: Value,
    /// The request's telemetry, finished with the result.
    pub operation: Option<Operation>,
}

/// Starts `call` on its own task; the returned stream answers the request. With `done`, the
/// result goes there instead of into the stream, as long as the other end still waits for it
/// (a call that may still answer as one JSON document).
pub fn start(call: PreparedCall, streamed: Streamed, done: Option<oneshot::Sender<ToolResult>>) -> EventStream {
    let (sender, stream) = EventStream::channel(BACKLOG);
    let span = streamed.operation.as_ref().map_or_else(tracing::Span::current, |operation| operation.span.clone());
    tokio::spawn(run(call, streamed, sender, done).instrument(span));
    stream
}

/// How long a call without a progress token may take before a client that accepts
/// `text/event-stream` gets its answer as a stream (kept alive by comments) instead of one
/// JSON document: proxies and clients on the way stop counting an idle connection.
pub const STREAM_AFTER: Duration = Duration::from_secs(3);

/// Runs `call` on its own task; the handler waits up to [`STREAM_AFTER`] for the result and
/// answers JSON with it, or the stream once the call outlives that.
pub async fn answer_within(call: PreparedCall, streamed: Streamed) -> Result<ToolResult, EventStream> {
    let (done, mut result) = oneshot::channel();
    let stream = start(call, streamed, Some(done));
    let finished = tokio::select! {
        finished = &mut result => finished.ok(),
        () = tokio::time::sleep(STREAM_AFTER) => {
            // Closed first, so that the task either delivered already or streams.
            result.close();
            result.try_recv().ok()
        }
    };
    finished.ok_or(stream)
}

async fn run(
    call: PreparedCall,
    streamed: Streamed,
    sender: mpsc::Sender<StreamItem>,
    done: Option<oneshot::Sender<ToolResult>>,
) {
    let Streamed { tool, id, token, key, stateless, arguments, operation } = streamed;
    let (_registration, mut cancelled) = Registration::new(key);
    let notifier = Notifier { sender: sender.clone(), token, progress: AtomicU64::new(0) };
    notifier.send(&format!("started {}", tool.config.name), false);
    let observe = |event: CallEvent| notifier.upstream(event);
    let started = Instant::now();
    let mut heartbeat = tokio::time::interval_at((started + HEARTBEAT).into(), HEARTBEAT);
    let running = call.run(&tool, &observe);
    tokio::pin!(running);
    let result = loop {
        tokio::select! {
            result = &mut running => break Some(result),
            _ = heartbeat.tick() => {
                if notifier.token.is_some() {
                    notifier.send(&format!("still waiting for the API ({} s)", started.elapsed().as_secs()), false);
                } else {
                    let _ = sender.try_send(StreamItem::Chunk(Bytes::from_static(b": still waiting\n\n")));
                }
            }
            _ = sender.closed() => break None,
            _ = &mut cancelled => break None,
        }
    };
    let Some(result) = result else {
        // Dropping `running` drops the upstream request and its connection.
        tracing::info!(request_id = %call.request_id(), tool = %tool.config.name, "Tool call cancelled before it ended");
        if let Some(operation) = operation {
            operation.finish(Some("cancelled"));
        }
        return;
    };
    let error_type = result.is_error().then_some("tool_error");
    let result = match done {
        Some(done) => match done.send(result) {
            Ok(()) => {
                // Answered as JSON by the handler, which records the call.
                if let Some(operation) = operation {
                    operation.finish(error_type);
                }
                return;
            }
            Err(result) => result,
        },
        None => result,
    };
    let status = result.upstream_status.map_or_else(|| "no answer".to_string(), |status| format!("status {status}"));
    notifier.send(&format!("the API answered ({status})"), true);
    let _ = sender.send(StreamItem::Record(result.record(&tool.config.name, &arguments))).await;
    if let Some(operation) = operation {
        operation.finish(error_type);
    }
    let mut value = result.result;
    if stateless {
        value["resultType"] = json!("complete");
    }
    let _ = sender.send(StreamItem::Chunk(event(&jsonrpc::result(id, value)))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_reaches_only_the_registered_key() {
        let mine = key("bearer:a", Some("s"), &json!(7));
        let (registration, mut receiver) = Registration::new(mine.clone());
        assert!(!cancel(&key("bearer:b", Some("s"), &json!(7))), "another caller");
        assert!(!cancel(&key("bearer:a", Some("s"), &json!("7"))), "another id");
        assert!(receiver.try_recv().is_err());
        assert!(cancel(&mine));
        assert!(receiver.try_recv().is_ok());
        drop(registration);
        assert!(!cancel(&mine), "gone once the call ended");
    }

    #[test]
    fn events_are_sse_messages() {
        assert_eq!(event(&json!({"a": 1})), Bytes::from("event: message\ndata: {\"a\":1}\n\n"));
    }
}
