//! The edge: pingora's `ProxyHttp` phases and the policy steps they delegate to.
//!
//! `app` is the HTTP application in front of pingora's proxy: it runs the pipeline on every
//! request, answers what the edge answers itself and hands only the passthrough on;
//! `proxy` holds the passthrough's phase methods and stays thin; `pipeline` is the ordered request policy
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
pub mod proxy;
pub mod rate_limit;
pub mod request_id;
pub mod respond;
pub mod route;

pub use policy::Policy;
pub use proxy::EdgeProxy;
