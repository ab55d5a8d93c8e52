//! Starts the real `mcp-edge` binary with a policy on free loopback ports.
//!
//! `TestEdge::new(policy::open()).passthrough(&api.url()).start()` writes the policy (the
//! listeners, development certificates and short drain times are added here), runs
//! `mcp-edge run`, and waits until the admin `/readyz` answers. The policy is a JSON value
//! (see `support::policy`) or, where the text is the point, YAML text.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::policy::PolicyText;
use super::{free_port, loopback, repo_root};

pub const BINARY: &str = env!("CARGO_BIN_EXE_mcp-edge");

pub struct TestEdgeBuilder {
    policy: String,
    passthrough: Option<String>,
    passthrough_scopes: Option<String>,
    plain_http: bool,
    client_ca: Option<PathBuf>,
    tls_files: Option<(PathBuf, PathBuf)>,
    audit: Option<String>,
    otlp: Option<String>,
    drain_delay: String,
    drain_timeout: String,
    environment: Vec<(String, String)>,
}

pub struct TestEdge {
    child: Child,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub stderr_path: PathBuf,
    pub stdout_path: PathBuf,
    /// The audit file, when the edge writes one (`audit_file`).
    pub audit_path: Option<PathBuf>,
    /// The policy file and the generated part written before the test's own policy.
    pub policy_path: PathBuf,
    base_yaml: String,
    _dir: tempfile::TempDir,
}

impl TestEdge {
    #[allow(clippy::new_ret_no_self)] // reads as the builder it starts: TestEdge::new(policy)...start()
    /// `policy` is everything but `listen`, `tls`, `passthrough` and `shutdown`: a JSON value
    /// or YAML text.
    pub fn new(policy: impl PolicyText) -> TestEdgeBuilder {
        TestEdgeBuilder {
            policy: policy.policy_yaml(),
            passthrough: None,
            passthrough_scopes: None,
            plain_http: false,
            client_ca: None,
            tls_files: None,
            audit: None,
            otlp: None,
            drain_delay: "0s".to_string(),
            drain_timeout: "5s".to_string(),
            environment: Vec::new(),
        }
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a real Unix signal to the process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid fits"));
        nix::sys::signal::kill(pid, signal).expect("send signal");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Replaces the test's part of the policy file (listeners, TLS and the rest stay).
    pub fn rewrite_policy(&self, policy: impl PolicyText) {
        let next = self.policy_path.with_extension("next");
        std::fs::write(&next, format!("{}{}", self.base_yaml, policy.policy_yaml())).expect("write policy");
        std::fs::rename(&next, &self.policy_path).expect("replace policy");
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// The audit events written so far, one JSON object per line.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let Some(path) = &self.audit_path else { return Vec::new() };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("audit line is not JSON: {line}")))
            .collect()
    }

    /// Waits (bounded: 10 s) until `predicate` holds for the audit events, and returns them.
    pub fn wait_audit(&self, predicate: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.audit_events();
            if predicate(&events) {
                return events;
            }
            assert!(Instant::now() < deadline, "audit events never matched; got {events:#?}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestEdgeBuilder {
    pub fn passthrough(mut self, url: &str) -> Self {
        self.passthrough = Some(url.to_string());
        self
    }

    /// Scopes the passthrough requires, as a YAML list (`[mcp:admin]`).
    pub fn passthrough_scopes(mut self, scopes: &str) -> Self {
        self.passthrough_scopes = Some(scopes.to_string());
        self
    }

    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// Requires client certificates signed by the development CA (mTLS).
    pub fn client_ca(mut self) -> Self {
        self.client_ca = Some(super::repo_root().join("certs.example/ca.crt"));
        self
    }

    /// Requires client certificates signed by a CA in the bundle at `path`.
    pub fn client_ca_file(mut self, path: PathBuf) -> Self {
        self.client_ca = Some(path);
        self
    }

    /// Writes the audit log to a file in the test folder, or to `path` (e.g. a FIFO), with
    /// `buffer_lines` lines of buffer.
    pub fn audit_file(mut self, path: Option<&std::path::Path>, buffer_lines: u32) -> Self {
        self.audit = Some(format!(
            "audit:\n  sink: file\n  file: {}\n  rotation: never\n  buffer_lines: {buffer_lines}\n",
            path.map_or_else(|| "AUDIT_PATH".to_string(), |path| path.display().to_string())
        ));
        self
    }

    /// Serves this certificate chain and key instead of the development pair.
    pub fn tls_files(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls_files = Some((cert, key));
        self
    }

    /// Exports traces to an OTLP/HTTP endpoint.
    pub fn otlp(mut self, endpoint: &str) -> Self {
        self.otlp = Some(endpoint.to_string());
        self
    }

    pub fn drain(mut self, delay: &str, timeout: &str) -> Self {
        self.drain_delay = delay.to_string();
        self.drain_timeout = timeout.to_string();
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.environment.push((name.to_string(), value.to_string()));
        self
    }

    pub fn start(self) -> TestEdge {
        let dir = tempfile::tempdir().expect("tempdir");
        let https = loopback(free_port());
        let admin = loopback(free_port());
        let http = self.plain_http.then(|| loopback(free_port()));
        let certs = repo_root().join("certs.example");
        let mut yaml = format!(
            "listen:\n  https: {https}\n  admin: {admin}\n{http}  threads: 2\ntls:\n  cert: {cert}\n  key: {key}\n\
             shutdown:\n  drain_delay: {delay}\n  drain_timeout: {timeout}\ntelemetry:\n  log_level: info\n{otlp}",
            otlp = self.otlp.as_ref().map(|url| format!("  otlp_endpoint: \"{url}\"\n")).unwrap_or_default(),
            http = http.map(|address| format!("  http: {address}\n")).unwrap_or_default(),
            cert = self
                .tls_files
                .as_ref()
                .map_or_else(|| certs.join("server-chain.crt"), |files| files.0.clone())
                .display(),
            key = self.tls_files.as_ref().map_or_else(|| certs.join("server.key"), |files| files.1.clone()).display(),
            delay = self.drain_delay,
            timeout = self.drain_timeout,
        );
        if let Some(client_ca) = &self.client_ca {
            yaml = yaml.replace("tls:\n", &format!("tls:\n  client_ca: {}\n", client_ca.display()));
        }
        if let Some(url) = &self.passthrough {
            yaml.push_str(&format!("passthrough:\n  url: {url}\n"));
            if let Some(scopes) = &self.passthrough_scopes {
                yaml.push_str(&format!("  scopes: {scopes}\n"));
            }
        }
        let default_audit = dir.path().join("audit.log");
        let audit_path = self.audit.as_ref().map(|audit| {
            if audit.contains("AUDIT_PATH") {
                yaml.push_str(&audit.replace("AUDIT_PATH", &default_audit.display().to_string()));
                default_audit.clone()
            } else {
                yaml.push_str(audit);
                PathBuf::from(audit.lines().find_map(|line| line.trim().strip_prefix("file: ")).unwrap_or_default())
            }
        });
        let base_yaml = yaml.clone();
        yaml.push_str(&self.policy);
        let policy_path = dir.path().join("policy.yaml");
        std::fs::write(&policy_path, yaml).expect("write policy");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let stdout_path = dir.path().join("stdout.log");
        let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
        let mut command = Command::new(BINARY);
        command
            .arg("run")
            .arg("--config")
            .arg(&policy_path)
            .env_remove("MCP_AUTH_TOKEN")
            .env_remove("ALLOWED_ORIGINS")
            .env_remove("API_BASE_URL")
            .env_remove("LOG_LEVEL")
            .env_remove("RUST_LOG")
            .stdout(stdout)
            .stderr(stderr);
        for (name, value) in &self.environment {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn mcp-edge");
        let mut edge = TestEdge {
            child,
            https,
            http,
            admin,
            stderr_path,
            stdout_path,
            audit_path,
            policy_path,
            base_yaml,
            _dir: dir,
        };
        wait_ready(&mut edge);
        edge
    }
}

/// Polls `/readyz` (bounded: 20 s) until it answers 200 and the TLS port accepts.
fn wait_ready(edge: &mut TestEdge) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = edge.child.try_wait() {
            panic!("mcp-edge exited during startup ({status}):\n{}", edge.stderr());
        }
        if admin_status(edge.admin, "/readyz") == Some(200) && TcpStream::connect(edge.https).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("mcp-edge did not become ready:\n{}", edge.stderr());
}

/// A blocking GET on the admin listener; `None` when it does not answer.
pub fn admin_status(admin: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// A blocking GET on the admin listener returning the body.
pub fn admin_body(admin: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}
