//! Numbers and addresses as text without `core::fmt`, for the per-request lines and headers
//! (audit events, `X-Forwarded-For`, request and trace ids): formatting an IPv4 address through `Display` costs
//! about a thousand instructions, writing its four octets with `itoa` a tenth of that.

use std::io::Write;
use std::net::IpAddr;

/// Appends `ip` as `Display` writes it.
pub fn push_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            let mut digits = itoa::Buffer::new();
            for (index, octet) in ip.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(ip) => drop(write!(out, "{ip}")),
    }
}

/// Appends the low `digits` hex digits of `value`, lower case, most significant first, zero
/// padded (`format!("{value:0digits$x}")` for a value that fits).
pub fn push_hex(out: &mut Vec<u8>, value: u128, digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for digit in (0..digits).rev() {
        out.push(DIGITS[((value >> (digit * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_display_writes_them() {
        for text in [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "10.0.100.9",
            "::1",
            "2001:db8::8:800:200c:417a",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = text.parse().expect("ip");
            let mut out = Vec::new();
            push_ip(&mut out, &ip);
            assert_eq!(String::from_utf8(out).expect("utf-8"), ip.to_string());
        }
    }

    #[test]
    fn hex_is_the_digits_asked_for_zero_padded() {
        for value in [0, 1, 0xdead_beef, u128::from(u64::MAX)] {
            let mut out = Vec::new();
            push_hex(&mut out, value, 16);
            assert_eq!(String::from_utf8(out).expect("utf-8"), format!("{value:016x}"));
        }
        for value in [0, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128, u128::MAX] {
            let mut out = Vec::new();
            push_hex(&mut out, value, 32);
            assert_eq!(String::from_utf8(out).expect("utf-8"), format!("{value:032x}"));
        }
        let mut out = Vec::new();
        push_hex(&mut out, 0x1, 2);
        assert_eq!(out, b"01");
    }
}
