//! The outbound address guard's rules: which resolved addresses a request to a user-typed
//! URL may connect to. Refused: loopback, private (RFC 1918, unique local), link-local
//! (which holds the cloud metadata address 169.254.169.254), CGNAT, multicast, broadcast,
//! unspecified and reserved ranges, and IPv6 forms that embed such an IPv4 address
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4) — unless the host or a CIDR holding the
//! address is in the allow list (`--alert-allow-hosts`). Pure: no resolution, no sockets.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public destination, or none when it is one.
pub fn private_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [127, ..] => "loopback",
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => "private",
        [169, 254, 169, 254] => "the cloud metadata address",
        [169, 254, ..] => "link-local",
        [100, 64..=127, ..] => "carrier-grade NAT",
        [0, ..] => "unspecified",
        [192, 0, 0, _] => "IETF protocol assignments",
        [198, 18..=19, ..] => "benchmarking",
        [224..=239, ..] => "multicast",
        [240..=255, ..] => "reserved or broadcast",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    let embedded = |a: u16, b: u16| Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8);
    Some(match s[0] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        0 if s[1..6] == [0; 5] => return v4_reason(embedded(s[6], s[7])),
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        0x64 if s[1] == 0xff9b => return v4_reason(embedded(s[6], s[7])),
        // 6to4 (2002::/16) embeds one in the next 32 bits.
        0x2002 => return v4_reason(embedded(s[1], s[2])),
        x if x & 0xfe00 == 0xfc00 => "unique local (private)",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// `--alert-allow-hosts`: host names (matched exactly, case-insensitively, against the
/// URL's host) and IP addresses or CIDRs (matched against every resolved address).
#[derive(Clone, Debug, Default)]
pub struct AllowList {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut a = AllowList::default();
        for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(net) = e.parse::<IpNet>() {
                a.nets.push(net);
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                a.nets.push(IpNet::from(ip));
            } else if e.contains('/') || e.contains(':') || e.contains(' ') {
                return Err(format!(
                    "--alert-allow-hosts: {e:?} is neither a host name nor an IP address or CIDR"
                ));
            } else {
                a.hosts.push(e.to_ascii_lowercase());
            }
        }
        Ok(a)
    }

    pub fn host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether a request to `host` may connect to `ip`; the reason when not.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if self.host(host) || self.nets.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        match private_reason(ip) {
            None => Ok(()),
            Some(why) => Err(format!(
                "{host} resolves to {ip} ({why}); add it to --alert-allow-hosts to allow it"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for (a, why) in [
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("169.254.169.254", "the cloud metadata address"),
            ("169.254.1.1", "link-local"),
            ("127.0.0.2", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved or broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique local (private)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "the cloud metadata address"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            assert_eq!(private_reason(ip(a)), Some(why), "{a}");
        }
        for a in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(private_reason(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn the_allow_list_takes_hosts_addresses_and_cidrs() {
        let a = AllowList::parse(&[
            "receiver.local".into(),
            "127.0.0.3".into(),
            "10.1.0.0/16".into(),
        ])
        .unwrap();
        assert!(a.check("RECEIVER.local", ip("127.0.0.1")).is_ok());
        assert!(a.check("x", ip("127.0.0.3")).is_ok());
        assert!(a.check("x", ip("10.1.200.1")).is_ok());
        let e = a.check("localhost", ip("127.0.0.1")).unwrap_err();
        assert!(
            e.contains("localhost resolves to 127.0.0.1 (loopback)"),
            "{e}"
        );
        assert!(a.check("x", ip("10.2.0.1")).is_err());
        assert!(a.check("example.com", ip("93.184.215.14")).is_ok());
        assert!(AllowList::parse(&["10.0.0.0/99".into()]).is_err());
    }
}
