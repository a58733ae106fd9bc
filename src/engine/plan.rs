//! The plan of one session: which listed messages to fetch, which to leave (too big, beyond
//! `--limit`) and which recorded ones are due for deletion. Pure: no I/O, no clock (the
//! caller passes `now`), so every policy is unit-tested here.
//!
//! Invariant 2 starts here: only messages already recorded as seen can be planned for DELE.

use std::time::Duration;

use crate::client::Listed;
use crate::proto::Uid;

/// The retention and selection policy for one session.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Fetch messages recorded as seen too (`--all`), once per run.
    pub all: bool,
    /// Fetch at most this many messages in this session (what is left of `--limit`).
    pub limit: Option<usize>,
    pub max_size: Option<u64>,
    /// New messages bigger than this are deleted without being fetched (mpop's
    /// `killsize`): the user's explicit order, so the one exception to invariant 2.
    pub killsize: Option<u64>,
    pub keep: bool,
    pub delete_after: Option<Duration>,
}

/// What to do with the listing: indexes into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// To retrieve, in server order.
    pub fetch: Vec<usize>,
    /// New but too big.
    pub too_big: Vec<usize>,
    /// New and over `killsize`: deleted without being fetched.
    pub kill: Vec<usize>,
    /// New, but beyond `limit`.
    pub deferred: usize,
    /// Already recorded as seen and due for deletion now.
    pub delete: Vec<usize>,
    /// Whether each fetched message is deleted once recorded.
    pub delete_fetched: bool,
}

/// Decide what to fetch and delete. `first_seen` answers from the seen-state (for a listed
/// message: its UIDL and size);
/// `fetched_this_run` names the messages an earlier session of the same run delivered, which
/// `--all` must not fetch again (a server that caps sessions lists them again).
/// Only messages already recorded can be in `delete` (invariant 2).
pub fn plan(
    listing: &[Listed],
    first_seen: impl Fn(&Listed) -> Option<i64>,
    fetched_this_run: impl Fn(&Uid) -> bool,
    policy: &Policy,
    now: i64,
) -> Plan {
    let mut p = Plan {
        delete_fetched: !policy.keep || policy.delete_after.is_some_and(|d| d.is_zero()),
        ..Plan::default()
    };
    for (i, m) in listing.iter().enumerate() {
        let seen = first_seen(m);
        let wanted = match seen {
            None => true,
            Some(_) => policy.all && !fetched_this_run(&m.uid),
        };
        if wanted {
            if policy.killsize.is_some_and(|max| m.size.0 > max) {
                p.kill.push(i);
            } else if policy.max_size.is_some_and(|max| m.size.0 > max) {
                p.too_big.push(i);
            } else if policy.limit.is_some_and(|l| p.fetch.len() >= l) {
                p.deferred += 1;
            } else {
                p.fetch.push(i);
            }
            continue;
        }
        let Some(first) = seen else { continue };
        if due(policy, first, now) {
            p.delete.push(i);
        }
    }
    p
}

/// Whether a message first seen at `first` is due for deletion at `now`.
pub fn due(policy: &Policy, first: i64, now: i64) -> bool {
    // Saturating: a `delete_after` beyond i64::MAX seconds means "never", not a negative
    // age that makes every seen message due at once.
    let min_age = policy
        .delete_after
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    !policy.keep || min_age.is_some_and(|age| now.saturating_sub(first) >= age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{MessageNumber, Octets};

    pub(crate) fn listing(n: u32) -> Vec<Listed> {
        (1..=n)
            .map(|i| Listed {
                number: MessageNumber::new(i).unwrap(),
                size: Octets(u64::from(i) * 100),
                uid: Uid::new(format!("u{i}").as_bytes()).unwrap(),
            })
            .collect()
    }

    fn seen(uids: &'static [(&'static str, i64)]) -> impl Fn(&Listed) -> Option<i64> {
        move |m: &Listed| {
            uids.iter()
                .find(|(s, _)| s.as_bytes() == m.uid.as_bytes())
                .map(|(_, t)| *t)
        }
    }

    fn none(_: &Uid) -> bool {
        false
    }

    #[test]
    fn keep_fetches_only_new_and_deletes_nothing() {
        let policy = Policy {
            keep: true,
            ..Policy::default()
        };
        let p = plan(&listing(3), seen(&[("u2", 0)]), none, &policy, 1000);
        assert_eq!(p.fetch, [0, 2]);
        assert!(p.delete.is_empty() && !p.delete_fetched);
    }

    #[test]
    fn delete_policy_deletes_only_what_is_recorded_or_fetched() {
        // Invariant 2: only recorded messages are planned for DELE up front; fetched ones
        // are deleted by the engine after their record.
        let policy = Policy::default();
        let p = plan(&listing(3), seen(&[("u2", 0)]), none, &policy, 1000);
        assert_eq!(p.fetch, [0, 2]);
        assert_eq!(p.delete, [1]);
        assert!(p.delete_fetched);
    }

    #[test]
    fn delete_after_counts_from_first_seen() {
        let policy = Policy {
            keep: true,
            delete_after: Some(Duration::from_secs(100)),
            ..Policy::default()
        };
        let p = plan(
            &listing(3),
            seen(&[("u1", 0), ("u2", 950)]),
            none,
            &policy,
            1000,
        );
        assert_eq!(p.delete, [0], "u1 is 1000 s old, u2 only 50 s");
        assert_eq!(p.fetch, [2]);
        assert!(!p.delete_fetched);
    }

    #[test]
    fn no_loss_huge_delete_after_never_makes_a_message_due() {
        // Issue 9 item 5: 10^19 seconds used to wrap to a negative age limit, so that
        // every seen message was due at once.
        let policy = Policy {
            keep: true,
            delete_after: Some(Duration::from_secs(10_000_000_000_000_000_000)),
            ..Policy::default()
        };
        let p = plan(
            &listing(2),
            seen(&[("u1", 0), ("u2", 1_000_000_000)]),
            none,
            &policy,
            4_000_000_000,
        );
        assert!(p.delete.is_empty(), "{p:?}");
    }

    #[test]
    fn max_size_and_limit() {
        let policy = Policy {
            keep: true,
            max_size: Some(250),
            limit: Some(1),
            ..Policy::default()
        };
        let p = plan(&listing(4), seen(&[]), none, &policy, 0);
        assert_eq!(p.fetch, [0]);
        assert_eq!(p.deferred, 1);
        assert_eq!(p.too_big, [2, 3]);
    }

    #[test]
    fn killsize_deletes_unfetched_before_max_size_and_limit_apply() {
        let policy = Policy {
            keep: true,
            killsize: Some(250),
            max_size: Some(150),
            limit: Some(1),
            ..Policy::default()
        };
        let p = plan(&listing(4), seen(&[("u4", 0)]), none, &policy, 0);
        assert_eq!(
            p.kill,
            [2],
            "u3 (300) is killed; u4 is seen, so never killed"
        );
        assert_eq!(p.too_big, [1]);
        assert_eq!(p.fetch, [0]);
        assert!(p.delete.is_empty(), "keep: nothing recorded is deleted");
    }

    #[test]
    fn all_refetches_seen_messages_once_per_run() {
        let policy = Policy {
            keep: true,
            all: true,
            ..Policy::default()
        };
        let p = plan(&listing(2), seen(&[("u1", 0), ("u2", 0)]), none, &policy, 0);
        assert_eq!(p.fetch, [0, 1]);
        assert!(p.delete.is_empty());
        // A later session of the same run (a server that caps sessions lists them again).
        let p = plan(
            &listing(2),
            seen(&[("u1", 0), ("u2", 0)]),
            |u: &Uid| u.as_bytes() == b"u1",
            &policy,
            0,
        );
        assert_eq!(p.fetch, [1]);
    }
}
