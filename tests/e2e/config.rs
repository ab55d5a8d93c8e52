//! `mcp-edge validate`: exit codes and located messages, and every shipped config is valid.
//!
//! Each file in `tests/fixtures/bad/` lists the problems it must produce in `# expect:` lines
//! (`LINE:COLUMN: key: message start`, or a message without location; `{dir}` stands for the
//! fixture's folder). The fixture is the test: add a file to add a case.

use std::path::Path;
use std::process::Command;

use crate::support::edge::BINARY;
use crate::support::repo_root;

fn validate(path: &Path) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .arg("validate")
        .arg("--config")
        .arg(path)
        .env_remove("MCP_AUTH_TOKEN")
        .env_remove("ALLOWED_ORIGINS")
        .env_remove("API_BASE_URL")
        .env_remove("LOG_LEVEL")
        // What conf/examples/multi-replica.yaml takes from a Secret.
        .env("SESSION_ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .output()
        .expect("run validate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn yaml_files(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .expect("read folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_fixture_exits_78_listing_each_expected_problem() {
    let folder = repo_root().join("tests/fixtures/bad");
    let fixtures = yaml_files(&folder);
    assert!(fixtures.len() >= 6, "fixtures missing");
    for fixture in fixtures {
        let text = std::fs::read_to_string(&fixture).expect("fixture");
        let expected: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# expect: "))
            .map(|expectation| expectation.replace("{dir}", &folder.display().to_string()))
            .collect();
        assert!(!expected.is_empty(), "{} has no # expect: line", fixture.display());
        let (code, _, stderr) = validate(&fixture);
        assert_eq!(code, 78, "{}:\n{stderr}", fixture.display());
        for expectation in &expected {
            let located = format!("{}:{expectation}", fixture.display());
            let whole_file = format!("{}: {expectation}", fixture.display());
            assert!(
                stderr.lines().any(|line| line.starts_with(&located) || line.starts_with(&whole_file)),
                "{} should report {expectation:?}; it printed:\n{stderr}",
                fixture.display()
            );
        }
        let count = stderr.lines().filter(|line| line.starts_with(&fixture.display().to_string())).count();
        assert_eq!(count, expected.len(), "{}: unexpected extra problems:\n{stderr}", fixture.display());
    }
}

#[test]
fn every_shipped_config_validates() {
    let mut files = yaml_files(&repo_root().join("conf"));
    files.extend(yaml_files(&repo_root().join("conf/examples")));
    assert!(files.len() >= 3, "conf/ should hold the reference and examples");
    for file in files {
        let (code, stdout, stderr) = validate(&file);
        assert_eq!(code, 0, "{} is invalid:\n{stderr}", file.display());
        assert!(stdout.contains("ok"), "{stdout}");
    }
}

#[test]
fn a_missing_policy_file_is_a_config_error() {
    let (code, _, stderr) = validate(Path::new("/nonexistent/mcp-edge.yaml"));
    assert_eq!(code, 78);
    assert!(stderr.contains("/nonexistent/mcp-edge.yaml: cannot read the policy file"), "{stderr}");
}

#[test]
fn environment_overrides_are_checked_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "listen: {https: null, http: 127.0.0.1:0, admin: 127.0.0.1:0}\nauth: {mode: none}\n")
        .expect("write");
    let output = Command::new(BINARY)
        .args(["validate", "--config"])
        .arg(&policy)
        .env("API_BASE_URL", "gopher://api.internal/api")
        .env("ALLOWED_ORIGINS", "https://ok.example, not an origin")
        .output()
        .expect("validate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78));
    assert!(
        stderr.contains("environment variable API_BASE_URL: \"gopher://api.internal/api\" has scheme gopher"),
        "{stderr}"
    );
    assert!(
        stderr.contains("environment variable ALLOWED_ORIGINS: cors.allowed_origins: \"not an origin\""),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = Command::new(BINARY).args(["validate"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(BINARY).args(["no-such-command"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_refused_bearer_token_is_never_printed() {
    let (code, stdout, stderr) = validate(&repo_root().join("tests/fixtures/bad/short-bearer-tokens.yaml"));
    assert_eq!(code, 78, "{stderr}");
    for token in ["abc123", "ci-short-1", "short-7"] {
        assert!(!stderr.contains(token) && !stdout.contains(token), "{token} was printed:\n{stderr}");
    }
}
