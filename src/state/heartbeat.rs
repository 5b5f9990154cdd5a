//! The heartbeat's part of the state port: per region, when the function's canary was last
//! seen and whether an outage is open (wall-clock seconds; see `crate::heartbeat`).

use std::future::Future;

use super::StateError;
use crate::model::Seconds;

/// What the heartbeat keeps of one region, in wall-clock seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionView {
    /// When the newest canary seen was made.
    pub last_seen: Option<Seconds>,
    /// When a heartbeat run first checked the region (a region never seen is blind once this is
    /// older than the allowed delay).
    pub first_checked: Seconds,
    /// The start of the open outage, if any.
    pub outage_since: Option<Seconds>,
}

/// Where the heartbeat keeps its per-region times: the state table in the Lambda (its own keys,
/// which no rule key can equal), memory in tests.
pub trait HeartbeatStore: Sync {
    /// Records that a canary made at `at` was seen from `region` (the newest time is kept).
    fn canary_seen(
        &self,
        region: &str,
        at: Seconds,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// The region's view, recording `now` as its first check unless one is recorded.
    fn check_region(
        &self,
        region: &str,
        now: Seconds,
    ) -> impl Future<Output = Result<RegionView, StateError>> + Send;

    /// Opens an outage starting at `since` unless one is open (a conditional write); returns the
    /// start of the open outage, so overlapping runs agree on it.
    fn open_outage(
        &self,
        region: &str,
        since: Seconds,
    ) -> impl Future<Output = Result<Seconds, StateError>> + Send;

    /// Closes the outage that started at `since` (a conditional write: a newer one stays open).
    fn close_outage(
        &self,
        region: &str,
        since: Seconds,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}
