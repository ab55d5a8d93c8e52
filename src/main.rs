//! The `mcp-edge` command line: parse, dispatch, exit codes (0 ok, 1 runtime failure,
//! 2 usage, 78 invalid configuration). Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_edge::{config, demo, healthcheck, server, telemetry};

/// mimalloc instead of glibc malloc: a proxy allocates and frees small buffers on every
/// request, and glibc's allocator cost a fifth of the CPU time of a saturated edge; mimalloc
/// gave 25 % more requests per second (see `bench/README.md`). It is small and builds in
/// seconds. `.cargo/config.toml` turns off its eager arena commit, which kept 10 MiB more
/// resident for no measurable speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(name = "mcp-edge", version, about = "A TLS-terminating edge proxy and MCP gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with the given policy.
    Run {
        /// Policy file (falls back to MCP_EDGE_CONFIG, then conf/mcp-edge.yaml).
        #[arg(long, env = "MCP_EDGE_CONFIG", default_value = "conf/mcp-edge.yaml")]
        config: PathBuf,
    },
    /// Check a policy exactly as `run` would, without opening a listener.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the tool catalogue a policy results in (imports and overrides applied).
    Tools {
        #[arg(long)]
        config: PathBuf,
        /// As JSON: {"tools": [{"name", "method", "path", "arguments", "scopes", "source"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Run the edge with development certificates in front of a built-in stand-in API.
    Demo,
    /// GET the admin /healthz and exit 0 when it answers 200 (for Docker HEALTHCHECK).
    Healthcheck {
        #[arg(long, default_value = healthcheck::DEFAULT_URL)]
        url: String,
    },
    /// Print version, git commit, rustc and enabled features.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Once, before anything builds a TLS client or verifies a JWT (the OTLP exporter, the
    // upstream and validation clients, the JWT verifier); reloads reuse it.
    mcp_edge::crypto::install_providers();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Validate { config } => validate(&config),
        Command::Tools { config, json } => tools(&config, json),
        Command::Demo => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(demo::DemoError::Config(errors)) => {
                eprintln!("{errors}");
                ExitCode::from(EXIT_CONFIG)
            }
            Err(error) => {
                eprintln!("mcp-edge demo: {error}");
                ExitCode::from(EXIT_RUNTIME)
            }
        },
        Command::Healthcheck { url } => match healthcheck::check(&url) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("unhealthy: {message}");
                ExitCode::from(EXIT_RUNTIME)
            }
        },
        Command::Version => {
            println!("mcp-edge {}", env!("CARGO_PKG_VERSION"));
            println!("commit: {}", env!("MCP_EDGE_GIT_COMMIT"));
            println!("rustc: {}", env!("MCP_EDGE_RUSTC_VERSION"));
            println!("features: pingora-0.9 rustls-ring http2");
            ExitCode::SUCCESS
        }
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::logging::init(&config.telemetry);
    if let Err(error) = telemetry::audit::install(&config.audit) {
        eprintln!("mcp-edge: {error}");
        return ExitCode::from(EXIT_RUNTIME);
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    match server::run(config, Vec::new()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "mcp-edge could not start");
            eprintln!("mcp-edge: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Prints the catalogue of a valid policy (exit 78 and the problems otherwise), for review.
fn tools(path: &std::path::Path, json: bool) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            if json {
                println!("{}", config::review::catalogue(&config));
            } else {
                print!("{}", config::review::catalogue_text(&config));
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn validate(path: &std::path::Path) -> ExitCode {
    // The same code path as `run`: the config, then the policy built from it (tokens file,
    // JWKS file), without opening a listener or fetching anything.
    let loaded = config::load(path).and_then(|config| {
        let config = std::sync::Arc::new(config);
        match mcp_edge::edge::Policy::new(std::sync::Arc::clone(&config)) {
            Ok(_) => Ok(config),
            Err(message) => Err(config::ConfigErrors {
                file: path.display().to_string(),
                errors: vec![config::ConfigError {
                    file: path.display().to_string(),
                    source: config::Source::Document,
                    key: "auth".to_string(),
                    message,
                }],
            }),
        }
    });
    match loaded {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
