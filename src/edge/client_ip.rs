//! Who the client is: the socket peer, or, when the peer is a trusted proxy, the first
//! untrusted address walking `X-Forwarded-For` from the right (nginx `real_ip_recursive on`).
//!
//! The leftmost entry is never believed on its own: anyone can write it. Walking from the
//! right means every hop we skip was added by a proxy we trust, so the first address we stop
//! at was written by a trusted proxy about its own peer.
//!
//! Every line of the header counts, in order, as one comma-joined list (RFC 9110 §5.3). Some
//! trusted proxies (HAProxy's `option forwardfor`) add a line of their own instead of
//! appending to the client's: reading only the first line would believe the client.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client address for policy decisions (rate limiting, audit). `forwarded_for` holds the
/// `X-Forwarded-For` lines in the order they arrived.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted_proxies) {
        return peer;
    }
    let mut hops = Vec::new();
    for line in forwarded_for {
        let Ok(text) = std::str::from_utf8(line) else { return peer };
        for entry in text.split(',') {
            match parse_hop(entry.trim()) {
                Some(address) => hops.push(canonical(address)),
                // A malformed list cannot be walked safely: fall back to the peer.
                None => return peer,
            }
        }
    }
    for address in hops.iter().rev() {
        if !is_trusted(*address, trusted_proxies) {
            return *address;
        }
    }
    // Every hop is trusted: the leftmost is the best we know, and it was written by a proxy
    // we trust (everything to its right is trusted too).
    hops.first().copied().unwrap_or(peer)
}

/// Whether `address` (canonical) is in one of the trusted proxy networks.
pub fn is_trusted(address: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|network| network.contains(&address))
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is the IPv4 address.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    entry.parse::<std::net::SocketAddr>().ok().map(|socket| socket.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(peer: &str, forwarded_for: Option<&str>, trusted: &[&str], expected: &str) {
        check_lines(peer, forwarded_for.as_slice(), trusted, expected);
    }

    fn check_lines(peer: &str, forwarded_for: &[&str], trusted: &[&str], expected: &str) {
        let trusted: Vec<IpNet> = trusted.iter().map(|cidr| cidr.parse().expect("cidr")).collect();
        let peer: IpAddr = peer.parse().expect("peer");
        let resolved = resolve(peer, forwarded_for.iter().map(|line| line.as_bytes()), &trusted);
        assert_eq!(resolved, expected.parse::<IpAddr>().expect("expected"), "peer {peer} xff {forwarded_for:?}");
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        check("203.0.113.9", Some("198.51.100.1"), &[], "203.0.113.9");
        check("203.0.113.9", Some("198.51.100.1"), &["10.0.0.0/8"], "203.0.113.9");
    }

    #[test]
    fn trusted_peers_are_walked_from_the_right() {
        check("10.0.0.2", Some("198.51.100.1"), &["10.0.0.0/8"], "198.51.100.1");
        // The leftmost entry is a spoof attempt; the rightmost untrusted one is the client.
        check("10.0.0.2", Some("1.1.1.1, 198.51.100.1, 10.0.0.7"), &["10.0.0.0/8"], "198.51.100.1");
        check("10.0.0.2", Some("198.51.100.1,10.1.2.3,10.0.0.7"), &["10.0.0.0/8"], "198.51.100.1");
    }

    #[test]
    fn every_header_line_is_part_of_the_list() {
        // A trusted proxy that adds its own line after the client's spoofed one.
        check_lines("10.0.0.2", &["203.0.113.1", "198.51.100.7"], &["10.0.0.0/8"], "198.51.100.7");
        check_lines("10.0.0.2", &["203.0.113.1, 10.0.0.9", "198.51.100.7, 10.0.0.8"], &["10.0.0.0/8"], "198.51.100.7");
        check_lines("10.0.0.2", &["198.51.100.7", "10.0.0.8"], &["10.0.0.0/8"], "198.51.100.7");
        check_lines("10.0.0.2", &["198.51.100.7", "junk"], &["10.0.0.0/8"], "10.0.0.2");
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        check("10.0.0.2", Some("10.9.9.9, 10.0.0.7"), &["10.0.0.0/8"], "10.9.9.9");
    }

    #[test]
    fn no_or_malformed_header_falls_back_to_the_peer() {
        check("10.0.0.2", None, &["10.0.0.0/8"], "10.0.0.2");
        check("10.0.0.2", Some(""), &["10.0.0.0/8"], "10.0.0.2");
        check("10.0.0.2", Some("198.51.100.1, not-an-ip"), &["10.0.0.0/8"], "10.0.0.2");
        check("10.0.0.2", Some("198.51.100.1,,"), &["10.0.0.0/8"], "10.0.0.2");
    }

    #[test]
    fn ipv6_and_ports_and_mapped_addresses() {
        check("fd00::1", Some("2001:db8::5"), &["fd00::/8"], "2001:db8::5");
        check("fd00::1", Some("[2001:db8::5]:443, fd00::9"), &["fd00::/8"], "2001:db8::5");
        check("10.0.0.2", Some("198.51.100.1:5555"), &["10.0.0.0/8"], "198.51.100.1");
        check("::ffff:10.0.0.2", Some("::ffff:198.51.100.1"), &["10.0.0.0/8"], "198.51.100.1");
    }
}
