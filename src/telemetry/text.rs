//! Numbers and addresses as text without `core::fmt`, for the per-request lines and headers
//! (audit events, `X-Forwarded-For`): formatting an IPv4 address through `Display` costs
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

/// Appends `value` as 16 lower-case hex digits.
pub fn push_hex16(out: &mut Vec<u8>, value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(DIGITS[((value >> (shift * 4)) & 0xf) as usize]);
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
    fn hex_is_sixteen_digits_zero_padded() {
        for value in [0, 1, 0xdead_beef, u64::MAX] {
            let mut out = Vec::new();
            push_hex16(&mut out, value);
            assert_eq!(String::from_utf8(out).expect("utf-8"), format!("{value:016x}"));
        }
    }
}
