//! Credential sessions (DESIGN.md §8): a client hands the edge its own API base URL and token
//! once (`POST /init`); later tool calls that carry `X-Session-Id` run against that API with
//! that token (`upstream.auth.mode: session`).
//!
//! `store` keeps the sessions (in memory only, bounded, expiring); `init` answers `/init` and
//! `DELETE /sessions/{id}` in the exact decision order of the design. The allow-list
//! `sessions.allowed_api_urls` is what stops the edge from being used to reach arbitrary
//! hosts with caller-chosen credentials.

pub mod init;
pub mod store;

pub use store::{CredentialSession, SessionStore};
