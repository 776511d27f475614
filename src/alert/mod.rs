//! Alerts, the pure core: rules and their validation (`rule`), the state machine that a
//! measured observation moves (`state`), notification channels (`channel`) and the messages
//! each kind of channel is sent (`message`). No I/O and no clock: `now` is an argument. The
//! evaluator, the outbox and delivery live in `service::alerts`; outbound HTTP in `outbound`.

pub mod channel;
pub mod message;
pub mod rule;
pub mod state;

pub use channel::Channel;
pub use rule::Rule;
pub use state::{Notice, RuleState, State};

/// The start (Unix ms) of the latest tick of `cron` (UTC) at or before `at_ms`.
pub fn tick_at_or_before(cron: &croner::Cron, at_ms: i64) -> Option<i64> {
    let at = chrono::DateTime::from_timestamp_millis(at_ms)?;
    cron.find_previous_occurrence(&at, true)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tick_before_a_time_is_found_in_utc() {
        let c = super::rule::schedule("0 3 * * *").unwrap();
        // 2026-12-03T05:00:00Z → that day's 03:00.
        let at = 1_796_274_000_000;
        assert_eq!(super::tick_at_or_before(&c, at), Some(at - 2 * 3_600_000));
        assert_eq!(
            super::tick_at_or_before(&c, at - 2 * 3_600_000),
            Some(at - 2 * 3_600_000)
        );
    }
}
