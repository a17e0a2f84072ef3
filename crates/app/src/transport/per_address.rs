//! Connections counted per client address, so that one host cannot hold every slot
//! (`MAX_CONNECTIONS_PER_ADDRESS`). An IPv6 client is its network of
//! `IPV6_THROTTLE_PREFIX` bits, as for throttling: a /64 is one host's, not 2^64 hosts.
//! Trusted proxies are exempt: every client behind one shares its address.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex, PoisonError},
};

use ipnet::IpNet;

/// The open connections of each address, and the cap.
#[derive(Debug, Clone)]
pub(crate) struct PerAddress(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    cap: usize,
    ipv6_prefix: u8,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address until dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    owner: Option<(PerAddress, IpAddr)>,
}

impl PerAddress {
    /// At most `cap` connections per address (0: no cap), IPv6 addresses counted by
    /// their `ipv6_prefix` network, the `exempt` networks not counted.
    pub(crate) fn new(cap: usize, ipv6_prefix: u8, exempt: Vec<IpNet>) -> Self {
        Self(Arc::new(Shared {
            cap,
            ipv6_prefix: ipv6_prefix.clamp(1, 128),
            exempt,
            open: Mutex::new(HashMap::new()),
        }))
    }

    /// A slot for a connection from `peer`, or `None` when its address holds the cap.
    pub(crate) fn admit(&self, peer: IpAddr) -> Option<Slot> {
        let peer = peer.to_canonical();
        if self.0.cap == 0 || self.0.exempt.iter().any(|net| net.contains(&peer)) {
            return Some(Slot { owner: None });
        }
        let key = self.key(peer);
        let mut open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.0.cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            owner: Some((self.clone(), key)),
        })
    }

    fn key(&self, peer: IpAddr) -> IpAddr {
        match peer {
            IpAddr::V4(_) => peer,
            IpAddr::V6(ip) => {
                let mask = u128::MAX << (128 - u32::from(self.0.ipv6_prefix));
                IpAddr::V6(Ipv6Addr::from(u128::from(ip) & mask))
            }
        }
    }

    fn release(&self, key: IpAddr) {
        let mut open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((per_address, key)) = self.owner.take() {
            per_address.release(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_holds_at_most_the_cap_and_a_closed_slot_is_given_back() {
        let per_address = PerAddress::new(2, 64, Vec::new());
        let first = per_address.admit(ip("198.51.100.1")).expect("one");
        let _second = per_address.admit(ip("198.51.100.1")).expect("two");
        assert!(per_address.admit(ip("198.51.100.1")).is_none(), "three");
        assert!(
            per_address.admit(ip("198.51.100.2")).is_some(),
            "another address"
        );
        drop(first);
        assert!(
            per_address.admit(ip("198.51.100.1")).is_some(),
            "given back"
        );
    }

    #[test]
    fn one_ipv6_network_is_one_address_and_trusted_proxies_are_exempt() {
        let proxy: IpNet = "10.0.0.0/8".parse().unwrap();
        let per_address = PerAddress::new(1, 64, vec![proxy]);
        let _held = per_address.admit(ip("2001:db8:1:2::1")).expect("one");
        assert!(
            per_address.admit(ip("2001:db8:1:2::ffff")).is_none(),
            "same /64"
        );
        assert!(
            per_address.admit(ip("2001:db8:1:3::1")).is_some(),
            "another /64"
        );
        let _a = per_address.admit(ip("10.1.1.1")).expect("exempt");
        assert!(per_address.admit(ip("10.1.1.1")).is_some(), "exempt");
        assert!(PerAddress::new(0, 64, Vec::new())
            .admit(ip("1.2.3.4"))
            .is_some());
    }
}
