//! Text from the server (greeting, `-ERR` text, headers) is untrusted: before it reaches a
//! terminal or a log, control characters (C0, DEL, C1), bidi overrides and zero-width
//! characters are escaped and the length is capped (STYLE.md rule 10; fd's sanitize).

/// The most characters of server text we show in one message.
pub const MAX_SHOWN: usize = 200;

/// Decode `bytes` as UTF-8 (invalid sequences become U+FFFD), escape every character that
/// could change what a terminal shows, and cut the result at [`MAX_SHOWN`] characters.
pub fn sanitize(bytes: &[u8]) -> String {
    sanitize_capped(bytes, MAX_SHOWN)
}

/// [`sanitize`] with its own cap: at most `max_chars` characters of `bytes`, then `…`.
pub fn sanitize_capped(bytes: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(max_chars + 8));
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        if is_dangerous(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM, RLM
            | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_bidi_and_zero_width() {
        assert_eq!(sanitize(b"ok text"), "ok text");
        assert_eq!(sanitize(b"a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(sanitize(b"tab\tnl\n"), "tab\\x09nl\\x0a");
        assert_eq!(sanitize("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(sanitize("x\u{200b}y".as_bytes()), "x\\u{200b}y");
        assert_eq!(sanitize(b"\xc2\x9b"), "\\x9b");
        assert_eq!(sanitize(b"bad \xff utf8"), "bad \u{fffd} utf8");
    }

    #[test]
    fn caps_length() {
        let long = vec![b'a'; 1000];
        let s = sanitize(&long);
        assert_eq!(s.chars().count(), MAX_SHOWN + 1);
        assert!(s.ends_with('…'));
        assert_eq!(sanitize_capped(b"abcdef", 3), "abc…");
        assert_eq!(sanitize_capped(b"abc", 3), "abc");
        assert_eq!(sanitize_capped("\u{202e}bc".as_bytes(), 1), "\\u{202e}…");
        assert_eq!(sanitize_capped(b"abc", 0), "…");
        assert_eq!(sanitize_capped(b"", 0), "");
    }
}
