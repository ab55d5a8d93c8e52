//! Reading a request body the edge answers itself (MCP, REST tools), within the size limit.

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use super::respond::EdgeError;

/// The whole body, or `PayloadTooLarge` once it passes `limit` bytes.
pub async fn read(session: &mut Session, limit: u64) -> Result<Bytes, EdgeError> {
    let mut body = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(EdgeError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(EdgeError::BadRequest),
        }
    }
}
