//! The request vocabulary every gateway layer speaks: who is calling ([`Principal`], with the
//! scopes check), what a handler answers ([`Reply`]) or refuses with ([`EdgeError`], mapped to
//! status, public body and headers in one match), what it leaves for the audit log
//! ([`Records`]), and the [`Downstream`] it reads the request from.
//!
//! Nothing here knows pingora, the policy or the per-request context: `credential_sessions`
//! and `mcp` build on these types, and `edge` connects them to the connection.

pub mod downstream;
pub mod error;
pub mod principal;
pub mod record;
pub mod reply;
pub mod scopes;

pub use downstream::{Caller, Downstream};
pub use error::{EdgeError, RpcError, RpcErrorKind};
pub use principal::{AuthFailure, AuthMethod, Principal};
pub use record::{AuthRecord, Records, SessionRecord, ToolOutcome, ToolRecord};
pub use reply::Reply;
