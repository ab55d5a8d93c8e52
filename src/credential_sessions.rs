//! Credential sessions (`POST /init`, secured against hijacking and flooding): a client hands
//! the edge its own API base URL and token once; later tool calls that carry `X-Session-Id`
//! run against that API with that token (`upstream.auth.mode: session`).
//!
//! `id` mints and checks session ids (an id is a credential); `allow_list` maps a presented
//! `apiUrl` to the `sessions.allowed_api_urls` entry it spells, which is what stops the edge
//! from being used to reach arbitrary hosts with caller-chosen credentials and bounds the
//! session upstreams; `store` keeps the sessions in memory (bounded, expiring, bound to
//! their owner and subject), `shared` in Redis with the same rules (`store.backend: redis`); `service` is the feature of one policy (store, allow-list,
//! validation client, single flight per id); `handlers` answer `/init` and
//! `DELETE /sessions/{id}` in the documented decision order, as [`Reply`](crate::request::Reply)
//! values.

pub mod allow_list;
pub mod handlers;
pub mod id;
pub mod service;
pub mod shared;
pub mod store;

pub use service::SessionService;
pub use store::{CredentialSession, SessionStore};

use crate::request::Principal;

/// The owner a session created by `principal` gets, and the caller string a use is checked
/// against ([`Principal::owner_key`]). `None` without a principal (`/init` is public with
/// `sessions.auth: none`).
pub fn owner_of(principal: Option<&Principal>) -> Option<String> {
    principal.map(Principal::owner_key)
}
