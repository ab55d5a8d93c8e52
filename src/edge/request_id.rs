//! Request ids: 128 random bits in lowercase hex, the same shape as a W3C trace id so the
//! two can be joined later.

use std::fmt::Write;

pub fn new_request_id() -> String {
    let bits: u128 = rand::random();
    let mut id = String::with_capacity(32);
    let _ = write!(id, "{bits:032x}");
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let first = new_request_id();
        let second = new_request_id();
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(first, second);
    }
}
