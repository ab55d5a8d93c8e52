//! Request ids: 128 random bits in lowercase hex, the same shape as a W3C trace id so the
//! two can be joined later.

pub fn new_request_id() -> String {
    hex(rand::random())
}

/// `bits` as 32 lowercase hex digits, digit by digit: `format!("{bits:032x}")` goes through
/// the formatting machinery (padding, a trait object), about a thousand instructions.
fn hex(bits: u128) -> String {
    let mut text = Vec::with_capacity(32);
    crate::telemetry::text::push_hex(&mut text, bits, 32);
    // Only hex digits went in.
    String::from_utf8(text).unwrap_or_default()
}

/// An incoming id from a trusted proxy is reused only if it is 1 to 128 of `A-Za-z0-9._-`,
/// so it cannot smuggle anything into logs or headers.
pub fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_the_bits_in_hex_most_significant_first_zero_padded() {
        for bits in [0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128, 0, 0xf, u128::MAX] {
            assert_eq!(hex(bits), format!("{bits:032x}"));
        }
    }

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let first = new_request_id();
        let second = new_request_id();
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(first, second);
        assert!(is_well_formed(&first));
    }

    #[test]
    fn only_plain_ids_are_reused() {
        assert!(is_well_formed("abc-123_X.y"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("a b"));
        assert!(!is_well_formed("id\r\ninjected: 1"));
        assert!(!is_well_formed(&"a".repeat(129)));
    }
}
