//! Which account the current thread works for, so that log lines (the `-vv` wire trace
//! above all) can name it when `fetch --jobs` interleaves several sessions on stderr.
//! `main`'s log format reads it; `cmd::fetch` sets it around each account.

use std::cell::RefCell;

thread_local! {
    static ACCOUNT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `f` with `account` as this thread's account.
pub fn with_account<R>(account: &str, f: impl FnOnce() -> R) -> R {
    let before = ACCOUNT.with(|a| a.replace(Some(account.to_owned())));
    let result = f();
    ACCOUNT.with(|a| *a.borrow_mut() = before);
    result
}

/// This thread's account, if one is set.
pub fn current() -> Option<String> {
    ACCOUNT.with(|a| a.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_set_inside_only() {
        assert_eq!(current(), None);
        let inner = with_account("work", || (current(), with_account("home", current)));
        assert_eq!(inner, (Some("work".into()), Some("home".into())));
        assert_eq!(current(), None);
    }
}
