//! Per-account state on disk: the seen-UIDL store ([`uidl`]) and the lock that keeps two runs
//! from fetching one account at once ([`lock`]).

pub mod lock;
pub mod too_big;
pub mod uid_table;
pub mod uidl;
