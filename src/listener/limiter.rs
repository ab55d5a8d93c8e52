//! Caps on open downstream connections: in total and per peer address.
//!
//! A connection holds a [`ConnectionPermit`] from accept until it closes, lingering refusals
//! included, so the counts are of sockets the process really holds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `limits.max_connections` are open.
    Total,
    /// `limits.max_connections_per_ip` are open from this peer.
    PerPeer,
}

/// Counts open connections, in total and per peer.
#[derive(Debug, Default)]
pub struct ConnectionLimiter {
    open: AtomicUsize,
    /// Only peers with an open connection have an entry, so the map is bounded by the
    /// total cap.
    per_peer: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection; dropping it gives the slots back.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    /// The peer key counted, when a per-peer cap applied at accept.
    peer: Option<IpAddr>,
}

impl ConnectionLimiter {
    /// Admits a connection from `peer` when fewer than `max_total` are open and, unless
    /// `max_per_peer` is 0, fewer than `max_per_peer` from the same peer.
    pub fn try_admit(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        max_total: u32,
        max_per_peer: u32,
    ) -> Result<ConnectionPermit, Refused> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= max_total as usize {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Total);
        }
        // From here the permit owns the total slot: an early return drops it.
        let mut permit = ConnectionPermit { limiter: Arc::clone(self), peer: None };
        if max_per_peer > 0
            && let Some(peer) = peer.map(peer_key)
        {
            let mut per_peer = self.per_peer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = per_peer.entry(peer).or_insert(0);
            if *count >= max_per_peer {
                return Err(Refused::PerPeer);
            }
            *count += 1;
            permit.peer = Some(peer);
        }
        Ok(permit)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Some(peer) = self.peer {
            let mut per_peer = self.limiter.per_peer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(count) = per_peer.get_mut(&peer) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    per_peer.remove(&peer);
                }
            }
        }
        self.limiter.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What counts as one peer: an IPv4 address (also when written IPv4-mapped), or an IPv6 /64,
/// the smallest network a single subscriber is usually given (the rate limiter keys the same
/// way), so one host cannot multiply its allowance by cycling addresses in its prefix.
fn peer_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("address"))
    }

    #[test]
    fn total_cap_refuses_the_connection_over_it_and_frees_slots_on_drop() {
        let limiter = Arc::new(ConnectionLimiter::default());
        let first = limiter.try_admit(ip("10.0.0.1"), 2, 0).expect("first");
        let _second = limiter.try_admit(ip("10.0.0.2"), 2, 0).expect("second");
        assert_eq!(limiter.try_admit(ip("10.0.0.3"), 2, 0).err(), Some(Refused::Total));
        assert_eq!(limiter.open(), 2);
        drop(first);
        assert!(limiter.try_admit(ip("10.0.0.3"), 2, 0).is_ok());
    }

    #[test]
    fn per_peer_cap_counts_each_peer_apart() {
        let limiter = Arc::new(ConnectionLimiter::default());
        let first = limiter.try_admit(ip("10.0.0.1"), 100, 1).expect("first");
        assert_eq!(limiter.try_admit(ip("10.0.0.1"), 100, 1).err(), Some(Refused::PerPeer));
        assert_eq!(limiter.open(), 1, "a refused connection holds no total slot");
        let _other = limiter.try_admit(ip("10.0.0.2"), 100, 1).expect("another peer");
        drop(first);
        let _again = limiter.try_admit(ip("10.0.0.1"), 100, 1).expect("a slot again");
        assert_eq!(limiter.per_peer.lock().expect("lock").len(), 2);
    }

    #[test]
    fn ipv6_peers_in_one_64_share_a_count_and_mapped_ipv4_is_ipv4() {
        let limiter = Arc::new(ConnectionLimiter::default());
        let _first = limiter.try_admit(ip("2001:db8:1:2::1"), 100, 1).expect("first");
        assert_eq!(limiter.try_admit(ip("2001:db8:1:2:ffff::9"), 100, 1).err(), Some(Refused::PerPeer));
        assert!(limiter.try_admit(ip("2001:db8:1:3::1"), 100, 1).is_ok());
        let _v4 = limiter.try_admit(ip("192.0.2.7"), 100, 1).expect("v4");
        assert_eq!(limiter.try_admit(ip("::ffff:192.0.2.7"), 100, 1).err(), Some(Refused::PerPeer));
    }

    #[test]
    fn dropped_permits_leave_no_entries_behind() {
        let limiter = Arc::new(ConnectionLimiter::default());
        for _ in 0..3 {
            let _permit = limiter.try_admit(ip("10.0.0.1"), 100, 5).expect("admitted");
        }
        assert!(limiter.per_peer.lock().expect("lock").is_empty());
        assert_eq!(limiter.open(), 0);
    }
}
