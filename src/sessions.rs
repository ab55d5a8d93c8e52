//! Credential sessions (DESIGN.md §8, secured by §16): a client hands the edge its own API base
//! URL and token once (`POST /init`); later tool calls that carry `X-Session-Id` run against
//! that API with that token (`upstream.auth.mode: session`).
//!
//! `id` mints and checks session ids (an id is a credential); `allow_list` maps a presented
//! `apiUrl` to the `sessions.allowed_api_urls` entry it spells, which is what stops the edge
//! from being used to reach arbitrary hosts with caller-chosen credentials and bounds the
//! session upstreams; `store` keeps the sessions (in memory only, bounded, expiring, bound
//! to their owner and subject); `init` answers `/init` and `DELETE /sessions/{id}` in the
//! design's decision order.

pub mod allow_list;
pub mod id;
pub mod init;
pub mod store;

pub use store::{CredentialSession, SessionStore};

use crate::edge::auth::Principal;

/// The owner a session created by `principal` gets, and the caller string a use is checked
/// against: the authentication method and subject (`bearer:ci`, `jwt:user-42`). `None`
/// without a principal (`/init` is public with `sessions.auth: none`).
pub fn owner_of(principal: Option<&Principal>) -> Option<String> {
    principal.map(|principal| format!("{}:{}", principal.method.as_str(), principal.subject))
}
