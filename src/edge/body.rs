//! pingora's server session as the [`Downstream`] handlers read: the request head, and the body
//! read whole within the size limit.

use bytes::{Bytes, BytesMut};
use pingora::protocols::http::ServerSession;

use crate::request::{Downstream, EdgeError};

#[async_trait::async_trait]
impl Downstream for ServerSession {
    fn head(&self) -> &http::request::Parts {
        self.req_header()
    }

    async fn read_body(&mut self, limit: u64) -> Result<Bytes, EdgeError> {
        let mut body = BytesMut::new();
        loop {
            match self.read_request_body().await {
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
}
