//! Calls from the edge to the upstream REST API. So far: the credentials those calls carry.

pub mod credentials;
