//! How one JSON value becomes text, shared by LEEF attributes and Splunk kv values
//! (`docs/formats/leef.md#rendering-values`), plus the backslash escaping both formats
//! use (`docs/formats/leef.md#escaping`, `docs/formats/splunk.md#kv-mode`) and the
//! compact JSON writer (`docs/formats/leef.md#compact-json`, Splunk `json`).
//!
//! Rendering and escaping are separate layers: a renderer writes the *unescaped* text
//! into an [`Out`], and an [`Escaper`] is an `Out` that escapes as it appends. A value
//! is therefore escaped exactly once however it was assembled (joined arrays,
//! composites, compact JSON), and no intermediate string is built.

use crate::json::{Object, Value};
use std::fmt;

/// Somewhere text can be appended. Appending never fails.
pub(crate) trait Out {
    fn put(&mut self, s: &str);
}

impl Out for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Appends to `out`, escaping every character that may not appear raw:
///
/// | character | written as |
/// |---|---|
/// | `\` | `\\` |
/// | `special` (the LEEF delimiter, `|` in the LEEF header, `"` in kv) | `\` + itself |
/// | TAB, LF, CR, NUL | `\t`, `\n`, `\r`, `\0` |
/// | other U+0001–U+001F, U+007F | `\xHH` (upper-case hex) |
///
/// Control characters are checked before `special`, so a TAB delimiter (`special =
/// '\t'`) is written as `\t`, never as a backslash and a raw TAB.
pub(crate) struct Escaper<'a> {
    out: &'a mut String,
    special: char,
}

impl<'a> Escaper<'a> {
    /// An escaper appending to `out`, with `special` as the one extra character that gets
    /// a backslash.
    pub(crate) fn new(out: &'a mut String, special: char) -> Self {
        Self { out, special }
    }

    #[cold]
    fn put_slow(&mut self, s: &str) {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let escape: Option<&str> = match c {
                '\\' => Some("\\\\"),
                '\t' => Some("\\t"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\0' => Some("\\0"),
                '\u{1}'..='\u{1f}' | '\u{7f}' => Some(""),
                c if c == self.special => Some(""),
                _ => None,
            };
            let Some(escape) = escape else { continue };
            self.out.push_str(&s[start..i]);
            start = i + c.len_utf8();
            if !escape.is_empty() {
                self.out.push_str(escape);
            } else if c.is_control() && (c as u32) < 0x80 {
                let b = c as u32;
                self.out.push_str("\\x");
                self.out.push(HEX_UPPER[(b >> 4) as usize & 0xf] as char);
                self.out.push(HEX_UPPER[b as usize & 0xf] as char);
            } else {
                self.out.push('\\');
                self.out.push(c);
            }
        }
        self.out.push_str(&s[start..]);
    }
}

impl Out for Escaper<'_> {
    #[inline]
    fn put(&mut self, s: &str) {
        if needs_escaping(s, self.special) {
            self.put_slow(s);
        } else {
            self.out.push_str(s);
        }
    }
}

/// Whether `s` holds anything [`Escaper`] would change. A byte scan: every character
/// that is escaped is ASCII, except possibly `special`.
#[inline]
fn needs_escaping(s: &str, special: char) -> bool {
    if special.is_ascii() {
        let sp = special as u8;
        s.bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b == sp)
    } else {
        s.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\') || s.contains(special)
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Undoes [`Escaper`] with the same `special`: `\\`, `\t`, `\n`, `\r`, `\0`, `\xHH` and
/// `\<special>`. Any other backslash sequence is kept as it stands.
pub fn unescape(value: &str, special: char) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('x') => {
                let mut probe = chars.clone();
                probe.next();
                let hi = probe.next().and_then(|h| h.to_digit(16));
                let lo = probe.next().and_then(|l| l.to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(char::from((hi * 16 + lo) as u8));
                        chars = probe;
                    }
                    _ => out.push('\\'),
                }
                continue;
            }
            Some(s) if s == special => out.push(special),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// Whether `value` renders to something: `null`, `[]` and `{}` do not.
#[inline]
pub(crate) fn is_present(value: &Value<'_>) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    }
}

/// Whether `value` is a string, number or boolean.
#[inline]
pub(crate) fn is_scalar(value: &Value<'_>) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Writes `value` rendered as a LEEF or kv value, unescaped (the caller's `out` escapes).
/// With `one_zero`, a boolean is `1`/`0` (`docs/formats/leef.md#keys-written-as-1-or-0`).
/// Writes nothing for a value that is not [`is_present`]; callers check first so they can
/// leave out the whole attribute.
pub(crate) fn write_value<O: Out>(out: &mut O, value: &Value<'_>, one_zero: bool) {
    match value {
        Value::Null => {}
        Value::String(s) => out.put(s),
        Value::Number(n) => write_display(out, n),
        Value::Bool(b) => out.put(match (b, one_zero) {
            (true, true) => "1",
            (false, true) => "0",
            (true, false) => "true",
            (false, false) => "false",
        }),
        Value::Array(items) if items.iter().all(is_scalar) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(",");
                }
                write_value(out, item, false);
            }
        }
        Value::Object(fields) if fields.is_empty() => {}
        Value::Array(_) | Value::Object(_) => write_json(out, value),
    }
}

/// Writes `value` as compact JSON, byte for byte what `serde_json::to_string` gives
/// (keys in received order, no spaces, UTF-8 as is, control characters as JSON
/// escapes, `/` not escaped).
pub(crate) fn write_json<O: Out>(out: &mut O, value: &Value<'_>) {
    match value {
        Value::Null => out.put("null"),
        Value::Bool(true) => out.put("true"),
        Value::Bool(false) => out.put("false"),
        Value::Number(n) => write_display(out, n),
        Value::String(s) => write_json_str(out, s),
        Value::Array(items) => {
            out.put("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(",");
                }
                write_json(out, item);
            }
            out.put("]");
        }
        Value::Object(fields) => write_json_object(out, fields),
    }
}

/// Writes one object as compact JSON.
pub(crate) fn write_json_object<O: Out>(out: &mut O, fields: &Object<'_>) {
    out.put("{");
    for (i, (key, item)) in fields.iter().enumerate() {
        if i > 0 {
            out.put(",");
        }
        write_json_str(out, key);
        out.put(":");
        write_json(out, item);
    }
    out.put("}");
}

/// Writes a JSON string literal with serde_json's escapes: `\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, and `\u00xx` (lower-case hex) for the other control characters.
pub(crate) fn write_json_str<O: Out>(out: &mut O, s: &str) {
    out.put("\"");
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // `b` is ASCII, so `i` and `i + 1` are character boundaries.
        out.put(&s[start..i]);
        start = i + 1;
        match b {
            b'"' => out.put("\\\""),
            b'\\' => out.put("\\\\"),
            0x08 => out.put("\\b"),
            0x0c => out.put("\\f"),
            b'\n' => out.put("\\n"),
            b'\r' => out.put("\\r"),
            b'\t' => out.put("\\t"),
            _ => {
                let hex = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX_LOWER[(b >> 4) as usize],
                    HEX_LOWER[(b & 0xf) as usize],
                ];
                // Six ASCII bytes are always valid UTF-8.
                if let Ok(text) = std::str::from_utf8(&hex) {
                    out.put(text);
                }
            }
        }
    }
    out.put(&s[start..]);
    out.put("\"");
}

/// Writes anything `Display` into an [`Out`] without an intermediate allocation.
pub(crate) fn write_display<O: Out, T: fmt::Display>(out: &mut O, value: &T) {
    struct Adapter<'a, O>(&'a mut O);
    impl<O: Out> fmt::Write for Adapter<'_, O> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.put(s);
            Ok(())
        }
    }
    // Our adapter never fails, and `Display` for numbers does not either.
    let _ = fmt::write(&mut Adapter(out), format_args!("{value}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(v: &serde_json::Value) -> Value<'static> {
        Value::from(v)
    }

    fn esc(s: &str, special: char) -> String {
        let mut out = String::new();
        Escaper::new(&mut out, special).put(s);
        out
    }

    fn rendered(v: &serde_json::Value) -> String {
        let mut out = String::new();
        write_value(&mut out, &tree(v), false);
        out
    }

    #[test]
    fn escaper_fast_path_is_verbatim() {
        assert_eq!(
            esc("Café Wi‑Fi 東京 a=b|c \"q\"", '\t'),
            "Café Wi‑Fi 東京 a=b|c \"q\""
        );
    }

    #[test]
    fn escaper_control_characters() {
        assert_eq!(esc("\u{1}\u{1f}\u{7f}\u{80}", '^'), "\\x01\\x1F\\x7F\u{80}");
        assert_eq!(esc("a\u{0}b\tc", '\t'), "a\\0b\\tc");
    }

    #[test]
    fn escaper_non_ascii_special_is_total() {
        assert_eq!(esc("a§b\\", '§'), "a\\§b\\\\");
        assert_eq!(unescape("a\\§b\\\\", '§'), "a§b\\");
    }

    #[test]
    fn unescape_keeps_unknown_sequences() {
        assert_eq!(unescape("\\q\\x4\\", '^'), "\\q\\x4\\");
        assert_eq!(unescape("\\x41\\^\\\\", '^'), "A^\\");
    }

    #[test]
    fn values_render_per_6_2() {
        assert_eq!(rendered(&json!("")), "");
        assert_eq!(rendered(&json!(8080)), "8080");
        assert_eq!(rendered(&json!(0.27)), "0.27");
        assert_eq!(rendered(&json!(-3)), "-3");
        assert_eq!(rendered(&json!(true)), "true");
        assert_eq!(rendered(&json!(["a", 7, true])), "a,7,true");
        assert_eq!(rendered(&json!(["a", null])), "[\"a\",null]");
        assert_eq!(rendered(&json!([["a"]])), "[[\"a\"]]");
        assert_eq!(
            rendered(&json!({"k": "é\n\u{1b}/", "n": [1, {}]})),
            "{\"k\":\"é\\n\\u001b/\",\"n\":[1,{}]}"
        );
        let mut one_zero = String::new();
        write_value(&mut one_zero, &tree(&json!(false)), true);
        assert_eq!(one_zero, "0");
        for absent in [json!(null), json!([]), json!({})] {
            assert!(!is_present(&tree(&absent)));
            assert_eq!(rendered(&absent), "");
        }
    }

    #[test]
    fn compact_json_matches_serde_json() {
        let v = json!({"b": [1.5, -0.0, 1e300, "x\u{8}\u{c}\u{7f}\"\\"], "a": {"z": null}});
        let mut out = String::new();
        write_json(&mut out, &tree(&v));
        assert_eq!(Some(out), serde_json::to_string(&v).ok());
    }
}
