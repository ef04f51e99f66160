//! Why a delivery failed, and whose fault it was: a failure of the receiver spends an attempt
//! and feeds its circuit breaker; one of this machine (no file descriptor, no route, no name
//! service) says nothing about the receiver and spends nothing.

/// Why a delivery failed: the receiver (counts as an attempt, feeds the circuit breaker), or
/// this machine (out of file descriptors or ports, no route, name service down: it says nothing
/// about the receiver, so it spends nothing). Neither text carries the URL (a robot's key).
#[derive(Debug, Clone)]
pub(super) enum Failure {
    Receiver(String),
    Local(String),
}

impl Failure {
    pub(super) fn of(e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            return Failure::Receiver("timeout".into());
        }
        let e = e.without_url();
        let mut text = e.to_string();
        let mut local = false;
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                local |= io.raw_os_error().is_some_and(local_errno);
                local |= io.to_string().contains("Temporary failure in name resolution");
            }
            source = s.source();
        }
        match local {
            true => Failure::Local(text),
            false => Failure::Receiver(format!("request failed: {text}")),
        }
    }
}

/// errno values that say this host cannot send now, whatever the receiver.
fn local_errno(n: i32) -> bool {
    [
        libc::EMFILE,
        libc::ENFILE,
        libc::ENOBUFS,
        libc::ENOMEM,
        libc::EADDRNOTAVAIL,
        libc::ENETUNREACH,
        libc::ENETDOWN,
    ]
    .contains(&n)
}
