//! A private `redis-server` for one test: a free loopback port, persistence off (`--save ''
//! --appendonly no`), its own folder, stopped when dropped. `kill` and `restart` (on the same
//! port) let a test take Redis away mid-run. `redis-server` comes from the Debian package
//! (`make setup` installs it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
    /// Serves TLS only (the development certificate), no plain port.
    tls: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// A server that requires this password (`requirepass`).
    pub fn with_password(password: &str) -> Self {
        Self::launch(Some(password.to_string()))
    }

    /// A server that speaks TLS only, with the development certificate (`rediss://`).
    pub fn with_tls() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            password: None,
            tls: true,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        server.spawn();
        server
    }

    fn launch(password: Option<String>) -> Self {
        let mut server =
            Self { child: None, port: free_port(), password, tls: false, dir: tempfile::tempdir().expect("tempdir") };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        let ports: &[&str] = if self.tls { &["--port", "0", "--tls-port", &port] } else { &["--port", &port] };
        command
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        if self.tls {
            let certs = super::repo_root().join("certs.example");
            command
                .arg("--tls-cert-file")
                .arg(certs.join("server-chain.crt"))
                .arg("--tls-key-file")
                .arg(certs.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(certs.join("ca.crt"))
                .args(["--tls-auth-clients", "no"]);
        }
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start redis-server ({error}); install it with `make setup` (apt-get install redis-server)")
        });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls `PING` (bounded: 10 s); a TLS server, until its port accepts.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.tls {
                if std::net::TcpStream::connect(super::loopback(self.port)).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if let Ok(mut connection) = self.connection() {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut connection);
                if pong.is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// `redis://127.0.0.1:<port>/0`, with the password when there is one.
    pub fn url(&self) -> String {
        if self.tls {
            return format!("rediss://127.0.0.1:{}/0", self.port);
        }
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// A URL of this server with another password.
    pub fn url_with_password(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/0", self.port)
    }

    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// Every key under `prefix` with its value (strings and hashes as text), by `SCAN`.
    pub fn dump(&self, prefix: &str) -> Vec<(String, String)> {
        let mut connection = self.connection().expect("connect to redis");
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut connection).expect("KEYS");
        let mut cursor: u64 = 0;
        let mut scanned = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .query(&mut connection)
                .expect("SCAN");
            scanned.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        scanned.sort();
        scanned.dedup();
        assert_eq!(scanned.len(), keys.len(), "SCAN saw every key");
        scanned
            .into_iter()
            .map(|key| {
                let kind: String = redis::cmd("TYPE").arg(&key).query(&mut connection).expect("TYPE");
                let value = match kind.as_str() {
                    "hash" => {
                        let fields: Vec<Vec<u8>> =
                            redis::cmd("HGETALL").arg(&key).query(&mut connection).expect("HGETALL");
                        fields
                            .iter()
                            .map(|field| String::from_utf8_lossy(field).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                    _ => {
                        let value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut connection).unwrap_or_default();
                        String::from_utf8_lossy(&value).into_owned()
                    }
                };
                (key, value)
            })
            .collect()
    }

    /// Stops the server at once (SIGKILL): what a crashed Redis looks like.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty (no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
