//! `mcp-edge demo`: the edge on https://127.0.0.1:8443 with the development certificates,
//! in front of a built-in stand-in for the ShiftWork API, plus curl commands to try.
//!
//! The stand-in answers a few JSON endpoints the way the reference .NET API does, so a
//! newcomer sees the whole path (TLS, authentication, proxying) in their first minute. Like
//! an ASP.NET Core API with Swashbuckle it describes itself at `/swagger/v1/swagger.json`,
//! and the demo's tools are imported from that document (DESIGN.md §18). The policy loads
//! before the stand-in starts with the edge, so while it loads a one-route server on the
//! stand-in's port answers the document fetch, then gives the port back.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::config;
use crate::server::{self, ExtraService};

const DEMO_POLICY: &str = include_str!("demo.yaml");
/// The stand-in's own OpenAPI document, which the demo policy imports its tools from.
const DEMO_OPENAPI: &str = include_str!("demo_openapi.json");
/// Where the stand-in serves it (Swashbuckle's default).
const DEMO_OPENAPI_PATH: &str = "/swagger/v1/swagger.json";
const DEV_FILES: [(&str, &str); 3] = [
    ("ca.crt", include_str!("../certs.example/ca.crt")),
    ("server-chain.crt", include_str!("../certs.example/server-chain.crt")),
    ("server.key", include_str!("../certs.example/server.key")),
];

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare the demo files in {path}: {source}")]
    Files { path: PathBuf, source: std::io::Error },
    #[error("cannot find a free port for the stand-in API: {0}")]
    Port(std::io::Error),
    #[error("the demo policy is invalid:\n{0}")]
    Config(config::ConfigErrors),
    #[error(transparent)]
    Server(#[from] server::StartupError),
}

/// Runs the demo until Ctrl-C.
pub fn run() -> Result<(), DemoError> {
    let folder = std::env::temp_dir().join(format!("mcp-edge-demo-{}", std::process::id()));
    let files_error = |source| DemoError::Files { path: folder.clone(), source };
    std::fs::create_dir_all(&folder).map_err(files_error)?;
    for (name, contents) in DEV_FILES {
        std::fs::write(folder.join(name), contents).map_err(files_error)?;
    }
    let policy_path = folder.join("demo.yaml");
    std::fs::write(&policy_path, DEMO_POLICY).map_err(files_error)?;

    let api_port =
        TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).map_err(DemoError::Port)?.port();
    let token = format!("demo-{}", &crate::edge::request_id::new_request_id()[..24]);
    let environment: HashMap<String, String> = HashMap::from([
        ("DEMO_CERT_DIR".to_string(), folder.display().to_string()),
        ("DEMO_API_PORT".to_string(), api_port.to_string()),
        ("DEMO_TOKEN".to_string(), token.clone()),
    ]);
    let document_server = DocumentServer::start(api_port).map_err(DemoError::Port)?;
    let loaded = config::load_with_environment(&policy_path, &environment);
    drop(document_server);
    let config = loaded.map_err(DemoError::Config)?;
    crate::telemetry::logging::init(&config.telemetry);
    crate::telemetry::audit::install(&config.audit)
        .map_err(|error| DemoError::Files { path: folder.clone(), source: std::io::Error::other(error) })?;

    let mut api = pingora::services::listening::Service::new("demo-api".to_string(), DemoApi);
    api.add_tcp(&format!("127.0.0.1:{api_port}"));
    api.threads = Some(1);
    println!("{}", instructions(&folder.join("ca.crt"), &token, api_port));
    let extra: Vec<ExtraService> = vec![Box::new(api)];
    server::run(config, extra)?;
    Ok(())
}

fn instructions(ca: &Path, token: &str, api_port: u16) -> String {
    let ca = ca.display();
    let edge = "https://127.0.0.1:8443";
    let auth = format!("-H 'Authorization: Bearer {token}'");
    let json = "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'";
    format!(
        "\nmcp-edge demo: the edge listens on {edge} (development certificate). It is the MCP server for\n\
         a built-in stand-in of the ShiftWork API on http://127.0.0.1:{api_port}/api, and passes other\n\
         requests through to it. Try:\n\n\
         # liveness, no token needed (HTTP/1.1 and HTTP/2)\n\
         curl --cacert {ca} {edge}/health\n\
         curl --cacert {ca} --http2 -sv {edge}/health 2>&1 | grep -i 'using http\\|< HTTP'\n\n\
         # without a token the edge answers 401\n\
         curl --cacert {ca} -i {edge}/api/tools\n\n\
         # MCP, session era: initialize returns an Mcp-Session-Id header\n\
         curl --cacert {ca} {auth} {json} -i {edge}/mcp \\\n  \
           -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'\n\
         # ... then send it back: -H 'Mcp-Session-Id: <id>' with tools/list or tools/call\n\n\
         # MCP, stateless era (2026-07-28): no session, the method and tool name in headers\n\
         curl --cacert {ca} {auth} {json} {edge}/mcp \\\n  \
           -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: get_shifts' \\\n  \
           -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"get_shifts\",\"arguments\":{{\"companyId\":\"42\"}},\"_meta\":{{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{{}}}}}}}}'\n\n\
         # the same tools over REST\n\
         curl --cacert {ca} {auth} {edge}/api/tools\n\
         curl --cacert {ca} {auth} -H 'Content-Type: application/json' -d '{{\"companyId\":\"42\"}}' {edge}/api/tools/get_shifts\n\n\
         # the tools were imported from the stand-in's own OpenAPI document\n\
         curl --cacert {ca} {auth} {edge}/swagger/v1/swagger.json\n\n\
         # requests for other paths pass through to the API\n\
         curl --cacert {ca} {auth} {edge}/api/employees\n\n\
         # admin listener: liveness and readiness probes\n\
         curl http://127.0.0.1:9901/healthz\n\
         curl http://127.0.0.1:9901/readyz\n\n\
         Stop with Ctrl-C.\n"
    )
}

/// Answers `GET /swagger/v1/swagger.json` (and nothing else) on the stand-in's port until
/// dropped: the policy fetches the document while it loads, before pingora starts the
/// stand-in itself on the same port.
struct DocumentServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DocumentServer {
    fn start(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => answer_document(stream),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One HTTP/1.1 exchange: the document for its path, 404 for anything else.
fn answer_document(mut stream: std::net::TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let wanted = format!("GET {DEMO_OPENAPI_PATH} ");
    let (status, body) =
        if head.starts_with(wanted.as_bytes()) { ("200 OK", DEMO_OPENAPI) } else { ("404 Not Found", "{}") };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// The stand-in ShiftWork API.
pub struct DemoApi;

fn json(status: u16, body: &serde_json::Value) -> Response<Vec<u8>> {
    let body = body.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for DemoApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let query = session.req_header().uri.query().unwrap_or_default().to_string();
        let authorization = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["swagger", "v1", "swagger.json"]) => {
                let body = DEMO_OPENAPI.as_bytes().to_vec();
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json; charset=utf-8")
                    .header("content-length", body.len())
                    .body(body)
                    .unwrap_or_else(|_| Response::new(Vec::new()))
            }
            ("GET", ["api", "employees"]) => json(
                200,
                &serde_json::json!([
                    {"id": "e-1", "name": "Ada Lovelace", "role": "manager"},
                    {"id": "e-2", "name": "Grace Hopper", "role": "engineer"},
                    {"id": "e-3", "name": "Alan Turing", "role": "analyst"}
                ]),
            ),
            ("GET", ["api", "companies", company, "shifts"]) => {
                let from = query.split('&').find_map(|pair| pair.strip_prefix("from=")).unwrap_or("2026-11-23");
                json(
                    200,
                    &serde_json::json!({
                        "companyId": company,
                        "shifts": [
                            {"id": "s-1", "employeeId": "e-1", "start": format!("{from}T08:00"), "end": format!("{from}T16:00")},
                            {"id": "s-2", "employeeId": "e-2", "start": format!("{from}T16:00"), "end": format!("{from}T23:59")}
                        ]
                    }),
                )
            }
            ("POST", ["api", "companies", company, "shifts"]) => {
                let body = read_body(session).await;
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(serde_json::Value::Object(mut shift)) => {
                        shift.insert("id".to_string(), serde_json::json!("s-3"));
                        shift.insert("companyId".to_string(), serde_json::json!(company));
                        json(201, &serde_json::Value::Object(shift))
                    }
                    _ => json(400, &serde_json::json!({"title": "The request body must be a JSON object."})),
                }
            }
            ("POST", ["api", "settings", "validate"]) => {
                let three_parts = authorization
                    .as_deref()
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .is_some_and(|token| token.split('.').count() == 3);
                if three_parts {
                    json(200, &serde_json::json!({"valid": true}))
                } else {
                    json(401, &serde_json::json!({"title": "Unauthorized"}))
                }
            }
            _ => json(404, &serde_json::json!({"title": "Not Found", "status": 404})),
        }
    }
}

/// Reads a small request body (the stand-in only takes small JSON objects).
async fn read_body(session: &mut ServerSession) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = session.read_request_body().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            break;
        }
    }
    body
}
