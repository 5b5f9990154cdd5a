//! The state R4 and R5 keep per SES identity (account, region, name), in one place: a delete is
//! evaluated by both rules, and [`State::step_identity`] answers both halves in one step (one
//! DynamoDB call).

use super::verify_then_delete as r4;
use crate::engine::{Event, Settings};
use crate::state::{IdentityOutcome, IdentityStep, State, StateError};

/// Which halves an event asks for: R4's pairing, R5's dedup window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Halves {
    pub pair: bool,
    pub window: bool,
}

pub async fn step<S: State>(
    event: &Event<'_>,
    state: &S,
    settings: &Settings,
    halves: Halves,
) -> Result<IdentityOutcome, StateError> {
    let key = format!(
        "id|{}|{}|{}",
        event.account,
        event.region,
        event.identity.as_deref().unwrap_or("")
    );
    // The mark (a copy of the event's subject) only when R4 pairs the event.
    let mark = halves.pair.then(|| r4::mark(event));
    let step = IdentityStep {
        event_id: event.event_id,
        now: event.time,
        pair: mark.as_ref().map(|mark| (r4::side(event), mark)),
        pair_window: settings.window,
        open_window: halves.window,
        dedup_window: settings.dedup,
    };
    state.step_identity(&key, step).await
}
