//! The edge: pingora's `ProxyHttp` phases and the policy steps they delegate to.
//!
//! `proxy` holds the phase methods and stays thin; `pipeline` is the ordered request policy;
//! `respond` is the one place where edge errors become HTTP responses; `passthrough` is the
//! reverse-proxy route; `auth` checks credentials; `context` is the per-request state.

pub mod auth;
pub mod context;
pub mod passthrough;
pub mod pipeline;
pub mod policy;
pub mod proxy;
pub mod request_id;
pub mod respond;
pub mod route;

pub use policy::Policy;
pub use proxy::EdgeProxy;
