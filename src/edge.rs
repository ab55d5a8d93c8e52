//! The edge: the HTTP application of the public listeners and the policy steps it runs.
//!
//! `app` runs the pipeline on every request and answers what the edge answers itself;
//! `forward` is the passthrough's upstream hop; `pipeline` is the ordered request policy
//! whose steps are `client_ip`, `limits`, `cors`, `rate_limit` and `auth`; `respond` is the
//! one place where edge errors become HTTP responses; `passthrough` is the reverse-proxy
//! route; `context` is the per-request state and `policy` the shared state built from config.

pub mod app;
pub mod auth;
pub mod body;
pub mod client_ip;
pub mod context;
pub mod cors;
pub mod forward;
pub mod limits;
pub mod observe;
pub mod passthrough;
pub mod pipeline;
pub mod policy;
pub mod rate_limit;
pub mod request_id;
pub mod respond;
pub mod route;

pub use policy::Policy;
