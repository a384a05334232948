//! Child processes that die with their owner.

use std::process::Child;

/// Processes killed (and waited for) when dropped, whatever happened.
pub struct KillOnDrop(pub Vec<Child>);

impl KillOnDrop {
    /// The processes' ids.
    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
