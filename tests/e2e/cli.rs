//! The small commands: `version` and `healthcheck`.

use std::process::Command;

use crate::support::edge::{BINARY, TestEdge};
use crate::support::policy;

#[test]
fn version_names_the_release_commit_and_toolchain() {
    let output = Command::new(BINARY).arg("version").output().expect("version");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with(&format!("mcp-edge {}", env!("CARGO_PKG_VERSION"))), "{stdout}");
    assert!(stdout.contains("commit: "), "{stdout}");
    assert!(stdout.contains("rustc: rustc "), "{stdout}");
}

#[test]
fn healthcheck_exits_0_against_a_live_admin_and_1_otherwise() {
    let edge = TestEdge::new(policy::open()).start();
    let status =
        Command::new(BINARY).args(["healthcheck", "--url", &edge.admin_url("/healthz")]).status().expect("run");
    assert_eq!(status.code(), Some(0));
    let dead = format!("http://127.0.0.1:{}/healthz", crate::support::free_port());
    let status = Command::new(BINARY).args(["healthcheck", "--url", &dead]).status().expect("run");
    assert_eq!(status.code(), Some(1));
}
