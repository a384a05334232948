//! Resident memory, read from Linux's `/proc/<pid>/status`: `VmRSS` (now)
//! and `VmHWM` (the peak). Elsewhere every reading is `None`, reported as
//! "n/a".

/// Kibibytes of resident memory.
pub type Kib = u64;

/// This process's resident memory now.
pub fn own_rss() -> Option<Kib> {
    field("self", "VmRSS")
}

/// This process's peak resident memory since it started, or since the last
/// [`reset_own_peak`].
pub fn own_peak() -> Option<Kib> {
    field("self", "VmHWM")
}

/// Resets this process's peak to its current resident memory (writing `5`
/// to `/proc/self/clear_refs`), so that the next [`own_peak`] covers one
/// run. Returns whether it could.
pub fn reset_own_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident memory of process `pid`.
pub fn peak_of(pid: u32) -> Option<Kib> {
    field(&pid.to_string(), "VmHWM")
}

/// A `kB` field of `/proc/<who>/status`.
fn field(who: &str, name: &str) -> Option<Kib> {
    let status = std::fs::read_to_string(format!("/proc/{who}/status")).ok()?;
    parse_field(&status, name)
}

fn parse_field(status: &str, name: &str) -> Option<Kib> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Kibibytes as mebibytes with one decimal, or "n/a".
pub fn show(kib: Option<Kib>) -> String {
    kib.map_or_else(
        || "n/a".to_string(),
        |k| format!("{:.1}", k as f64 / 1024.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kilobyte_fields() {
        let status = "Name:\txtask\nVmHWM:\t   13548 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_field(status, "VmHWM"), Some(13548));
        assert_eq!(parse_field(status, "VmRSS"), Some(9000));
        assert_eq!(parse_field(status, "VmSwap"), None);
        assert_eq!(show(Some(2048)), "2.0");
        assert_eq!(show(None), "n/a");
    }
}
