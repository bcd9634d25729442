//! What the daemon benchmarks share: reading a process's CPU time and resident memory.

/// (user + system CPU seconds, resident bytes) of a process, from /proc.
pub fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon is running");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu = (fields[11].parse::<f64>().expect("utime")
        + fields[12].parse::<f64>().expect("stime"))
        / ticks_per_second;
    (cpu, status_bytes(pid, &["VmRSS:"])[0])
}

/// The given `/proc/PID/status` fields (all in kB there), in bytes.
fn status_bytes<const N: usize>(pid: u32, keys: &[&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    keys.map(|key| {
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"));
        kib * 1024
    })
}

/// (anonymous, file-backed) resident bytes of a process: its heap and stacks, and
/// the pages of its binary it has touched.
#[allow(
    dead_code,
    reason = "each bench compiles this module; only the scale bench reads it"
)]
pub fn resident_parts(pid: u32) -> (u64, u64) {
    let [anonymous, file] = status_bytes(pid, &["RssAnon:", "RssFile:"]);
    (anonymous, file)
}
