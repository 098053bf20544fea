//! Ports for the nodes that tests and benchmarks start (shared by `tests/common` and
//! `benches/common`).

/// A port nobody listens on right now, handed out once per test process.
///
/// The kernel's pick for port 0 is no good here: it may hand the same port to two calls in a
/// row (two nodes of one cluster then collide), and it comes from the ephemeral range, so while
/// a node is down between a `kill -9` and its restart an outgoing connection may take its
/// port. Ports come from below the ephemeral range instead (`ip_local_port_range`), walked from
/// a point that differs between processes, and each is checked free before it is handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = port_range();
    let span = high - low;
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free port left in {low}..{high}");
        let port = (low + (start + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The ports [`free_port`] hands out: from 10000 up to the start of the kernel's ephemeral
/// range, or above its end when the range starts too low to leave room below it.
fn port_range() -> (u32, u32) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    match ephemeral {
        (first, _) if first >= 12_000 => (10_000, first),
        (_, last) if last <= 63_000 => (last + 1, 65_536),
        _ => (10_000, 32_768),
    }
}
