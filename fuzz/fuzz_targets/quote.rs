//! mboxrd quoting: the streaming `Quoter`, fed the message in pieces the input chooses,
//! produces exactly what the whole-message definition (`quote_whole`) does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::deliver::mbox::quote::{Quoter, quote_whole};

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (msg, cuts) = input;
    let mut q = Quoter::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &c in &cuts {
        let end = (at + usize::from(c)).min(msg.len());
        q.quote(&msg[at..end], &mut out);
        at = end;
    }
    q.quote(&msg[at..], &mut out);
    q.finish(&mut out);
    assert_eq!(out, quote_whole(&msg));
});
