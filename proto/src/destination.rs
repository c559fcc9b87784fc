//! Where webhooks may go: the destination rules shared by everything that accepts a URL from a
//! tenant (campaign destinations, per-render callbacks) and by the sender that connects to it.
//!
//! Tenant-supplied URLs must not make the farm reach its own network (SSRF):
//! [`check_destination`] accepts `http`/`https` URLs without credentials whose host resolves
//! only to public addresses ([`forbidden_reason`] says why an address is not), unless the farm
//! allows private destinations (tests, local demos). DNS answers can change after the check,
//! so the sender repeats it when it connects ([`resolve_checked`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

/// Why a webhook URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// The URL does not parse.
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    /// The scheme is not `http` or `https`.
    #[error("webhook URL scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// The URL carries a user name or password.
    #[error("webhook URL must not contain credentials (user:password@)")]
    Credentials,
    /// The URL has no host.
    #[error("webhook URL has no host")]
    NoHost,
    /// The host name could not be resolved.
    #[error("cannot resolve webhook host {host:?}: {error}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's message.
        error: String,
    },
    /// The host name resolved to no address.
    #[error("webhook host {0:?} resolves to no address")]
    NoAddress(String),
    /// The host is, or resolves to, an address that is not public.
    #[error("webhook host {host:?} resolves to {addr}, a {reason} address: refused")]
    Forbidden {
        /// The host as written in the URL.
        host: String,
        /// The offending address.
        addr: IpAddr,
        /// Which kind of address (e.g. `"loopback"`), from [`forbidden_reason`].
        reason: &'static str,
    },
}

/// Why `ip` is not an acceptable webhook destination, or `None` if it is a public address.
///
/// Refused: unspecified (`0.0.0.0/8`, `::`), loopback (`127/8`, `::1`), private (RFC 1918
/// `10/8`, `172.16/12`, `192.168/16`; unique-local `fc00::/7`), link-local (`169.254/16`,
/// `fe80::/10`), shared/CGNAT `100.64/10`, multicast (`224/4`, `ff00::/8`), reserved and
/// broadcast (`240/4`), and deprecated site-local `fec0::/10`. IPv4-mapped (`::ffff:a.b.c.d`)
/// and NAT64 (`64:ff9b::/96`) addresses are judged by the IPv4 address they carry.
pub fn forbidden_reason(ip: &IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: &Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a >= 240 {
        Some("reserved or broadcast")
    } else {
        None
    }
}

fn forbidden_v6(ip: &Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(&v4);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return forbidden_v4(&Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some("private (unique-local)")
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The static checks on a webhook URL: parses, http/https, no credentials, has a host.
/// Returns the URL and its host (without IPv6 brackets).
pub fn parse_destination(url: &str) -> Result<(Url, String), DestinationError> {
    let parsed = Url::parse(url).map_err(|e| DestinationError::InvalidUrl(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(DestinationError::Scheme(other.to_string())),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    let host = parsed
        .host_str()
        .ok_or(DestinationError::NoHost)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(DestinationError::NoHost);
    }
    Ok((parsed, host))
}

/// Resolves `host` and checks every address (unless `allow_private`). Refuses the host if
/// *any* address is not public: a name mixing public and private addresses is suspect.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, DestinationError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| DestinationError::Resolve {
            host: host.to_string(),
            error: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(DestinationError::NoAddress(host.to_string()));
    }
    if !allow_private {
        for addr in &addrs {
            let ip = addr.ip();
            if let Some(reason) = forbidden_reason(&ip) {
                return Err(DestinationError::Forbidden {
                    host: host.to_string(),
                    addr: ip,
                    reason,
                });
            }
        }
    }
    Ok(addrs)
}

/// Checks a webhook URL before it is accepted (campaign or endpoint configuration).
///
/// The URL must parse, use `http` or `https`, carry no credentials and have a host; the host
/// is resolved (`tokio::net::lookup_host`) and refused if it does not resolve or if any
/// address is not public (see [`forbidden_reason`]) — unless `allow_private`, meant for
/// tests and local demos.
///
/// This is a configuration-time check; DNS answers can change afterwards (DNS rebinding),
/// so [`Sender`] repeats the address check when it connects and connects only to the
/// addresses it checked.
pub async fn check_destination(url: &str, allow_private: bool) -> Result<Url, DestinationError> {
    let (parsed, host) = parse_destination(url)?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    resolve_checked(&host, port, allow_private).await?;
    Ok(parsed)
}
