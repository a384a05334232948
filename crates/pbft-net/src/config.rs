//! The transport's settings.

use std::fmt;
use std::time::Duration;

use crate::frame::MAX_FRAME_BYTES;

/// Timeouts, backoff and queue bounds. [`NetConfig::default`] suits a
/// cluster on one network; tests shorten the timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// How long a connection may take to connect and complete its
    /// handshake; a peer that stays silent longer is dropped.
    pub handshake_timeout: Duration,
    /// How long an established connection may stay silent (no frame, not
    /// even a ping) before it is closed as dead; also how long one write
    /// may block.
    pub idle_timeout: Duration,
    /// How long a writer with nothing to send waits before it sends a
    /// ping. Must be shorter than `idle_timeout`.
    pub heartbeat: Duration,
    /// The first wait before dialing a peer again.
    pub backoff_initial: Duration,
    /// The longest wait between dials; the wait doubles up to it.
    pub backoff_max: Duration,
    /// The most frames queued for one peer.
    pub queue_frames: usize,
    /// The most bytes queued for one peer; at least [`MAX_FRAME_BYTES`].
    pub queue_bytes: usize,
    /// The most events waiting for the driver; readers wait for room.
    pub incoming_events: usize,
    /// The most bytes of received frames waiting for the driver (until the
    /// driver drops or takes each [`Frame`](crate::Frame)); a frame that
    /// would pass it is dropped, unless its sender's own waiting frames,
    /// with it, stay within [`MAX_FRAME_BYTES`]: a member that floods
    /// fills the bound only for itself. At least [`MAX_FRAME_BYTES`].
    pub incoming_bytes: usize,
    /// The most accepted connections in their handshake at once; more are
    /// closed at once.
    pub max_pending_handshakes: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            queue_frames: 4096,
            queue_bytes: 2 * MAX_FRAME_BYTES,
            incoming_events: 4096,
            incoming_bytes: 4 * MAX_FRAME_BYTES,
            max_pending_handshakes: 64,
        }
    }
}

/// A setting that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl NetConfig {
    /// Checks that the settings can work together.
    pub fn check(&self) -> Result<(), ConfigError> {
        let fail = |text: &str| Err(ConfigError(text.to_string()));
        if self.handshake_timeout.is_zero() || self.idle_timeout.is_zero() {
            return fail("timeouts must be positive");
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.idle_timeout {
            return fail("the heartbeat must be positive and shorter than the idle timeout");
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return fail("backoff must be positive, its cap no lower than its start");
        }
        if self.queue_frames == 0 || self.incoming_events == 0 || self.max_pending_handshakes == 0 {
            return fail("queue and handshake limits must be positive");
        }
        if self.queue_bytes < MAX_FRAME_BYTES || self.incoming_bytes < MAX_FRAME_BYTES {
            return fail("byte bounds must hold at least one largest frame");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_work_and_bad_settings_are_refused() {
        assert_eq!(NetConfig::default().check(), Ok(()));
        let bad = [
            NetConfig {
                heartbeat: Duration::from_secs(10),
                ..NetConfig::default()
            },
            NetConfig {
                queue_bytes: MAX_FRAME_BYTES - 1,
                ..NetConfig::default()
            },
            NetConfig {
                backoff_max: Duration::from_millis(1),
                ..NetConfig::default()
            },
        ];
        for config in bad {
            assert!(config.check().is_err(), "{config:?}");
        }
    }
}
