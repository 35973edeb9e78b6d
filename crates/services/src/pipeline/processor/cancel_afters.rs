//! Dead man's switches as the processor records them: a batch's `CancelAfterSet` and
//! `CancelAfterTriggered` events folded into the store's two lists (see `StoreBatch`).

use oms_domain::events::Event;
use oms_domain::ids::AccountId;
use oms_ports::order_store::CancelAfterState;
use std::collections::{BTreeMap, BTreeSet};

/// One batch's switch events, in log order (one account's events are in one partition, so
/// in order).
#[derive(Debug, Default)]
pub(super) struct CancelAfters {
    /// The newest setting per account in the batch, with its own trigger folded in.
    pub settings: BTreeMap<AccountId, CancelAfterState>,
    /// Triggers for accounts without a setting in the batch: they name a stored setting.
    pub triggers: BTreeSet<(AccountId, u64)>,
}

impl CancelAfters {
    pub fn fold(&mut self, event: &Event) {
        match event {
            Event::CancelAfterSet {
                account,
                deadline,
                change,
            } => {
                self.triggers.retain(|(a, _)| a != account);
                self.settings.insert(
                    *account,
                    CancelAfterState {
                        deadline: *deadline,
                        change: *change,
                        triggered: false,
                    },
                );
            }
            Event::CancelAfterTriggered { account, change } => {
                match self.settings.get_mut(account) {
                    // As risk does: a trigger fires only the setting it was written for.
                    Some(s) => s.triggered |= s.change == *change,
                    None => {
                        self.triggers.insert((*account, *change));
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::Timestamp;

    const A: AccountId = AccountId(7);

    fn set(change: u64, deadline: Option<i64>) -> Event {
        Event::CancelAfterSet {
            account: A,
            deadline: deadline.map(Timestamp),
            change,
        }
    }

    fn fire(change: u64) -> Event {
        Event::CancelAfterTriggered { account: A, change }
    }

    fn fold(events: &[Event]) -> CancelAfters {
        let mut c = CancelAfters::default();
        for e in events {
            c.fold(e);
        }
        c
    }

    fn state(change: u64, deadline: Option<i64>, triggered: bool) -> CancelAfterState {
        CancelAfterState {
            deadline: deadline.map(Timestamp),
            change,
            triggered,
        }
    }

    #[test]
    fn the_newest_setting_wins_and_its_own_trigger_fires_it() {
        let c = fold(&[set(1, Some(10)), set(2, Some(20)), fire(2)]);
        assert_eq!(c.settings[&A], state(2, Some(20), true));
        assert!(c.triggers.is_empty());
    }

    #[test]
    fn a_trigger_of_an_older_setting_does_nothing() {
        let c = fold(&[set(1, Some(10)), set(2, Some(20)), fire(1)]);
        assert_eq!(c.settings[&A], state(2, Some(20), false));
        assert!(c.triggers.is_empty());
    }

    #[test]
    fn a_trigger_without_a_setting_in_the_batch_names_the_stored_one_until_a_setting_follows() {
        let c = fold(&[fire(1)]);
        assert!(c.settings.is_empty());
        assert_eq!(c.triggers, BTreeSet::from([(A, 1)]));
        let c = fold(&[fire(1), set(2, None)]);
        assert_eq!(c.settings[&A], state(2, None, false));
        assert!(c.triggers.is_empty());
    }
}
