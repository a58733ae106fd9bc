//! The seen-state's table: every recorded UIDL's bytes in one arena, and a hash table of
//! (offset, length, first-seen time) into it. A mailbox of 100 000 seen messages then costs
//! the UIDLs' own bytes plus 16 bytes of table each, instead of a heap allocation per UIDL
//! (issue 10: peak memory for a big mailbox). This module owns only that layout; what the
//! times mean and how they reach the disk is `uidl`'s.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// One recorded UIDL: where its bytes are in the arena, and when it was first seen.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u32,
    len: u32,
    first_seen: i64,
}

/// UIDL bytes → first-seen time.
#[derive(Debug, Default)]
pub struct UidTable {
    arena: Vec<u8>,
    table: HashTable<Slot>,
    hasher: RandomState,
    /// Arena bytes of removed UIDLs, reclaimed by [`UidTable::compact`].
    garbage: usize,
}

impl UidTable {
    /// A table with room for `uids` UIDLs of `bytes` bytes in all.
    pub fn with_capacity(uids: usize, bytes: usize) -> UidTable {
        UidTable {
            arena: Vec::with_capacity(bytes),
            table: HashTable::with_capacity(uids),
            ..UidTable::default()
        }
    }

    fn bytes<'a>(arena: &'a [u8], slot: &Slot) -> &'a [u8] {
        &arena[slot.offset as usize..(slot.offset + slot.len) as usize]
    }

    fn hash(&self, uid: &[u8]) -> u64 {
        self.hasher.hash_one(uid)
    }

    /// When `uid` was first seen, if it is recorded.
    pub fn get(&self, uid: &[u8]) -> Option<i64> {
        let arena = &self.arena;
        self.table
            .find(self.hash(uid), |s| Self::bytes(arena, s) == uid)
            .map(|s| s.first_seen)
    }

    /// Whether `uid` is recorded.
    pub fn contains(&self, uid: &[u8]) -> bool {
        self.get(uid).is_some()
    }

    /// How many UIDLs are recorded.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Record `uid` as first seen at `first_seen`, unless it is recorded already (then its
    /// time stays). Returns whether it was new.
    pub fn insert(&mut self, uid: &[u8], first_seen: i64) -> bool {
        let hash = self.hash(uid);
        let arena = &self.arena;
        if self
            .table
            .find(hash, |s| Self::bytes(arena, s) == uid)
            .is_some()
        {
            return false;
        }
        let offset = u32::try_from(self.arena.len()).expect("a seen-state under 4 GiB");
        let len = u32::try_from(uid.len()).expect("a UIDL under 4 GiB");
        self.arena.extend_from_slice(uid);
        let slot = Slot {
            offset,
            len,
            first_seen,
        };
        let (hasher, arena) = (&self.hasher, &self.arena);
        self.table
            .insert_unique(hash, slot, |s| hasher.hash_one(Self::bytes(arena, s)));
        true
    }

    /// Set `uid`'s time to `first_seen` when that is earlier than the recorded one (or
    /// record it). Returns whether anything changed.
    pub fn insert_earliest(&mut self, uid: &[u8], first_seen: i64) -> bool {
        let hash = self.hash(uid);
        let arena = &self.arena;
        if let Some(slot) = self.table.find_mut(hash, |s| Self::bytes(arena, s) == uid) {
            let earlier = first_seen < slot.first_seen;
            if earlier {
                slot.first_seen = first_seen;
            }
            return earlier;
        }
        self.insert(uid, first_seen)
    }

    /// Forget `uid`; whether it was recorded.
    pub fn remove(&mut self, uid: &[u8]) -> bool {
        let hash = self.hash(uid);
        let arena = &self.arena;
        match self
            .table
            .find_entry(hash, |s| Self::bytes(arena, s) == uid)
        {
            Ok(entry) => {
                let (slot, _) = entry.remove();
                self.garbage += slot.len as usize;
                self.compact_if_worth_it();
                true
            }
            Err(_) => false,
        }
    }

    /// Keep only the UIDLs for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let arena = &self.arena;
        let mut dropped = 0;
        self.table.retain(|s| {
            let kept = keep(Self::bytes(arena, s));
            if !kept {
                dropped += s.len as usize;
            }
            kept
        });
        self.garbage += dropped;
        self.compact_if_worth_it();
    }

    /// Every recorded UIDL with its time, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], i64)> {
        let arena = &self.arena;
        self.table
            .iter()
            .map(move |s| (Self::bytes(arena, s), s.first_seen))
    }

    /// Rebuild the arena without the bytes of removed UIDLs once they are most of it.
    fn compact_if_worth_it(&mut self) {
        if self.garbage <= self.arena.len() / 2 {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for slot in self.table.iter_mut() {
            let start = arena.len();
            arena.extend_from_slice(Self::bytes(&self.arena, slot));
            slot.offset = u32::try_from(start).expect("smaller than before");
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn the_first_time_stays_and_earlier_times_win_on_import() {
        let mut t = UidTable::default();
        assert!(t.insert(b"a", 5));
        assert!(!t.insert(b"a", 1), "a second record keeps the first time");
        assert_eq!(t.get(b"a"), Some(5));
        assert!(t.insert_earliest(b"a", 3));
        assert!(!t.insert_earliest(b"a", 4));
        assert_eq!(t.get(b"a"), Some(3));
        assert!(t.insert_earliest(b"b", 9));
        assert_eq!((t.len(), t.get(b"b"), t.get(b"c")), (2, Some(9), None));
    }

    proptest! {
        /// The table behaves as a map from UIDL bytes to time, through every removal,
        /// retention and compaction.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(
            (0u8..4, proptest::collection::vec(b'a'..b'e', 1..4), 0i64..100), 0..200)) {
            let mut t = UidTable::default();
            let mut m: HashMap<Vec<u8>, i64> = HashMap::new();
            for (op, uid, time) in ops {
                match op {
                    0 => {
                        prop_assert_eq!(t.insert(&uid, time), !m.contains_key(&uid));
                        m.entry(uid).or_insert(time);
                    }
                    1 => prop_assert_eq!(t.remove(&uid), m.remove(&uid).is_some()),
                    2 => {
                        t.retain(|u| u[0] != uid[0]);
                        m.retain(|u, _| u[0] != uid[0]);
                    }
                    _ => {
                        t.insert_earliest(&uid, time);
                        let e = m.entry(uid).or_insert(time);
                        *e = (*e).min(time);
                    }
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for (uid, time) in &m {
                prop_assert_eq!(t.get(uid), Some(*time));
            }
            let mut all: Vec<(Vec<u8>, i64)> = t.iter().map(|(u, s)| (u.to_vec(), s)).collect();
            all.sort();
            let mut want: Vec<(Vec<u8>, i64)> = m.into_iter().collect();
            want.sort();
            prop_assert_eq!(all, want);
        }
    }
}
