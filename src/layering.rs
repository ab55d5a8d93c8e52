//! Keeps the module dependencies pointing one way. The layer list is written once, in
//! ARCHITECTURE.md ("Layers"); this test reads it and every file under `src/`, and fails on
//! a `crate::` path that reaches a module not below the file's own, on a top-level module
//! missing from the list, on a gateway module (one that answers requests as values) that
//! touches pingora, and on a pipeline step that reaches for the policy or the request context;
//! and it checks that the code map names every file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Modules whose handlers return replies and never see the connection.
const GATEWAY_MODULES: [&str; 3] = ["request", "credential_sessions", "mcp"];

/// The pipeline's steps (files under `src/edge/`, `auth` with its parts): each is a plain
/// function of its inputs, so none may reach for the policy or the request context.
const STEP_FILES: [&str; 5] = ["auth", "cors", "rate_limit", "limits", "client_ip"];
const NOT_FOR_STEPS: [&str; 5] = ["RequestContext", "PolicyHandle", "super::Policy", "edge::Policy", "policy::"];

/// Whether `file` is one of the pipeline's steps.
fn is_step(file: &Path) -> bool {
    let Ok(relative) = file.strip_prefix(root().join("src/edge")) else { return false };
    let first = relative.components().next().and_then(|part| part.as_os_str().to_str()).unwrap_or_default();
    STEP_FILES.contains(&first.strip_suffix(".rs").unwrap_or(first))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Layer of each module, 0 at the bottom, from the fenced block after `<!-- layers -->`.
fn layers() -> HashMap<String, usize> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let after_marker = text.split_once("<!-- layers -->").expect("a <!-- layers --> marker in ARCHITECTURE.md").1;
    let block = after_marker.split("```").nth(1).expect("a fenced block after the marker");
    let rows: Vec<&str> = block.lines().skip(1).map(str::trim).filter(|line| !line.is_empty()).collect();
    let mut layers = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        for module in row.split_whitespace() {
            let previous = layers.insert(module.to_string(), rows.len() - 1 - index);
            assert!(previous.is_none(), "{module} is listed twice in the layers");
        }
    }
    layers
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for the crate roots and this
/// test).
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root().join("src")).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(module, "lib" | "main" | "layering")).then(|| module.to_string())
}

/// Every top-level module a line names through `crate::`.
fn crate_paths(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices("crate::").filter_map(move |(at, _)| {
        let preceded_by_ident =
            line[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let rest = &line[at + "crate::".len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        (!preceded_by_ident && end > 0).then(|| &rest[..end])
    })
}

/// Problems in `src/`, as `file:line: what`.
fn violations() -> Vec<String> {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else { continue };
        let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
        let Some(&own) = layers.get(&module) else {
            problems.push(format!("{shown}: module `{module}` is not in the layers of ARCHITECTURE.md"));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for target in crate_paths(code) {
                let allowed = target == module || layers.get(target).is_some_and(|&layer| layer < own);
                if !allowed {
                    problems.push(format!("{shown}:{}: `{module}` uses `crate::{target}`, not below it", number + 1));
                }
            }
            if GATEWAY_MODULES.contains(&module.as_str()) && code.contains("pingora") {
                problems.push(format!("{shown}:{}: gateway module `{module}` touches pingora", number + 1));
            }
            if is_step(file)
                && let Some(name) = NOT_FOR_STEPS.iter().find(|name| code.contains(**name))
            {
                problems.push(format!("{shown}:{}: a pipeline step uses `{name}`", number + 1));
            }
        }
    }
    problems
}

#[test]
fn dependencies_point_down_the_layers() {
    let problems = violations();
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let name = file.file_name()?.to_str()?;
            let named = text.contains(&format!("{name}`")) || text.contains(&format!("/{name}"));
            (!named).then(|| file.strip_prefix(root()).unwrap_or(file).display().to_string())
        })
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map does not name: {missing:?}");
}

#[test]
fn the_path_reader_finds_crate_paths_only() {
    let found: Vec<&str> = crate_paths("use crate::edge::Policy; x::crate::no; crate::mcp").collect();
    assert_eq!(found, ["edge", "mcp"]);
    assert_eq!(crate_paths("mcp_edge::crate").count(), 0);
}
