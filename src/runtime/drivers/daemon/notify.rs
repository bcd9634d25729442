//! The systemd notification protocol: `READY=1`, `WATCHDOG=1`, `RELOADING=1`,
//! `STOPPING=1` as datagrams to `$NOTIFY_SOCKET`. Outside systemd (no socket) every
//! call is a no-op.
//!
//! What it must not do: fail the daemon: a notification that cannot be sent is dropped.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one state line; `Ok(false)` when not running under a notifying supervisor.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    match bytes.split_first() {
        // An abstract socket: systemd writes its name with a leading `@`.
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &address)?;
        }
        _ => {
            socket.send_to(state.as_bytes(), &path)?;
        }
    }
    Ok(true)
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, if the watchdog is ours.
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    let micros: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (micros > 0).then(|| Duration::from_micros(micros / 2))
}

/// What this process tells systemd, each from one place: `READY=1` once it can act
/// (a standby's first turn, a leader's first pass) and again after every reload,
/// `RELOADING=1` when a reload starts, `STOPPING=1` at the end.
#[derive(Debug, Default)]
pub struct Systemd {
    ready: std::sync::atomic::AtomicBool,
}

impl Systemd {
    /// `READY=1`, unless already said since the last reload started.
    pub fn ready(&self) {
        if !self.ready.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let _ = notify("READY=1");
        }
    }

    /// Whether `READY=1` has been said.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn reloading(&self) {
        self.ready
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = notify("RELOADING=1");
    }

    /// `STOPPING=1`, asking for `stop_time` to stop in.
    pub fn stopping(&self, stop_time: Duration) {
        let _ = notify(&format!(
            "STOPPING=1\nEXTEND_TIMEOUT_USEC={}",
            stop_time.as_micros()
        ));
    }
}
