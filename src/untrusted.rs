//! Text that came from outside on its way to an operator: a server's error body, an
//! OAuth `error_description`, a content type, a proxy's error page, an event name, a
//! saved position. Before such text reaches a log line, `/health`, `status` or
//! `check-config --probe`, [`Redactor::clean`] makes it safe to show:
//!
//! 1. every known secret is replaced by `***` in every form a server could echo it in:
//!    as is, percent-encoded, JSON-escaped and base64-encoded (so the proxy's
//!    `user:password` inside a `Basic` header is caught too); whatever follows
//!    `Bearer` or `Basic` is replaced as well, known or not, and a secret cut off at
//!    the end of a bounded excerpt is replaced from where its first characters begin;
//! 2. control characters (CR and LF, which would forge a log line; ESC and BEL, which
//!    drive a terminal; Unicode line separators and bidirectional overrides) are
//!    escaped as `\n`, `\u{1b}`, …;
//! 3. the result is cut to a bound, at a character boundary, and the cut is marked
//!    with `…`.
//!
//! The cleaning is pure ([`Redactor`]); the process keeps one registry of the secrets
//! in use ([`remember`], [`remember_token`]) that [`clean`] and [`clean_log_line`]
//! apply. Keys and proxy credentials are registered when a tenant's HTTP clients are
//! built, access tokens when they are fetched. The log writer applies
//! [`clean_log_line`] to every line as a last line of defence, so text from outside
//! that some code path logs without cleaning still cannot forge a line, drive a
//! terminal or show a known secret.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{LazyLock, PoisonError, RwLock, RwLockReadGuard};

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// Secrets shorter than this are not searched for: a one-letter test key would
/// otherwise blank out every such letter of every message.
pub const MIN_SECRET_LEN: usize = 4;

/// A secret cut off at the end of an excerpt is recognised from this many characters.
const MIN_PARTIAL_LEN: usize = 4;

/// Access tokens remembered at once; the oldest is forgotten first. Tokens live for an
/// hour or more, so this covers a hundred tenants refreshing for a day.
pub const REMEMBERED_TOKENS: usize = 4096;

/// The longest line the log writer passes on; the rest is cut and marked.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// Redacts a fixed set of secrets from text, escapes it and bounds it.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    forms: FormIndex,
}

/// Every form of some secrets, indexed by their first [`PREFIX`] bytes. The process
/// learns secrets one at a time (a key per tenant's client, a token per fetch: a
/// thousand of each when a thousand tenants start), and adding one here is a few
/// insertions; an automaton over every form had to be built again for each, which
/// took time in the square of the number of tenants.
#[derive(Debug, Clone, Default)]
struct FormIndex {
    /// The forms that begin with these bytes, longest first.
    by_prefix: HashMap<[u8; PREFIX], Vec<String>>,
    /// Every form in byte order: the forms that begin with a given text are next to
    /// each other there, so a cut-off secret is found by a range query
    /// ([`FormIndex::partial_tail`]) rather than by trying every form.
    sorted: BTreeSet<String>,
    /// The length of the longest form.
    longest: usize,
}

/// Bytes of a form its index is keyed by; every form is at least this long, since a
/// secret has at least [`MIN_SECRET_LEN`] characters.
const PREFIX: usize = 4;

impl FormIndex {
    /// Adds every form of `secret`.
    fn add(&mut self, secret: &str) {
        for form in forms(secret) {
            let Some(key) = prefix(form.as_bytes()) else {
                continue;
            };
            if !self.sorted.insert(form.clone()) {
                continue;
            }
            self.longest = self.longest.max(form.len());
            let same = self.by_prefix.entry(key).or_default();
            same.push(form);
            same.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        }
    }

    /// The longest form that `text[at..]` begins with.
    fn form_at(&self, text: &[u8], at: usize) -> Option<&str> {
        let key = prefix(&text[at..])?;
        self.by_prefix
            .get(&key)?
            .iter()
            .find(|f| text[at..].starts_with(f.as_bytes()))
            .map(String::as_str)
    }

    /// Whether `text` holds a form.
    fn is_match(&self, text: &[u8]) -> bool {
        !self.sorted.is_empty() && (0..text.len()).any(|at| self.form_at(text, at).is_some())
    }

    /// `text` with every form replaced by [`REDACTED`]: at each position, from the
    /// left, the longest form there (as a leftmost-longest search does).
    fn redact(&self, text: &str) -> String {
        if self.sorted.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut copied, mut at) = (0, 0);
        while at < bytes.len() {
            match self.form_at(bytes, at) {
                // A form begins with a whole character, so `at` is a character
                // boundary (a continuation byte never equals a leading byte).
                Some(form) => {
                    out.push_str(&text[copied..at]);
                    out.push_str(REDACTED);
                    at += form.len();
                    copied = at;
                }
                None => at += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Where the earliest tail of `text` that is the beginning of a form (at least
    /// [`MIN_PARTIAL_LEN`] bytes of it, but not all of it) begins, if one is: a range
    /// query per position within the longest form's length of the end.
    fn partial_tail(&self, text: &str) -> Option<usize> {
        let first = text.len().saturating_sub(self.longest.saturating_sub(1));
        let last = text.len().checked_sub(MIN_PARTIAL_LEN)?;
        (first..=last)
            .filter(|&at| text.is_char_boundary(at))
            .find(|&at| {
                let tail = &text[at..];
                self.sorted
                    .range::<str, _>((Bound::Included(tail), Bound::Unbounded))
                    .take_while(|f| f.starts_with(tail))
                    .any(|f| f.len() > tail.len())
            })
    }
}

/// The first [`PREFIX`] bytes of `bytes`, if it has that many.
fn prefix(bytes: &[u8]) -> Option<[u8; PREFIX]> {
    bytes.get(..PREFIX)?.try_into().ok()
}

impl Redactor {
    /// A redactor for `secrets` (each in every form, see [`forms`]).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Self::default();
        for secret in secrets {
            redactor.forms.add(secret);
        }
        redactor
    }

    /// `text` (any bytes; invalid UTF-8 is replaced) with every secret redacted,
    /// control characters escaped, and at most `limit` bytes long (plus the `…` that
    /// marks a cut).
    pub fn clean(&self, text: &[u8], limit: usize) -> String {
        let text = String::from_utf8_lossy(text);
        // Escaped first, so that what is searched is what is shown.
        let redacted = self.redact(&escape_controls(&text));
        let (mut out, cut) = bound(&redacted, limit);
        // The excerpt may end inside a secret (cut here or by whoever read it).
        if let Some(at) = self.forms.partial_tail(&out) {
            out.truncate(at);
            out.push_str(REDACTED);
        }
        if cut {
            out.push('…');
        }
        out
    }

    /// One formatted log line (ending in `\n`): secrets redacted, control characters
    /// other than the final newline escaped, cut at [`MAX_LOG_LINE`]. A line with
    /// nothing to change is returned as it is.
    pub fn clean_line(&self, line: &[u8]) -> Vec<u8> {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let has_control = body.iter().any(|&b| b < 0x20 || b == 0x7f)
            || !body.is_ascii() && String::from_utf8_lossy(body).chars().any(needs_escape);
        let has_secret = self.forms.is_match(body) || contains_auth_scheme(body);
        if !has_control
            && !has_secret
            && body.len() <= MAX_LOG_LINE
            && std::str::from_utf8(body).is_ok()
        {
            return line.to_vec();
        }
        let mut out = self.clean(body, MAX_LOG_LINE).into_bytes();
        out.push(b'\n');
        out
    }

    /// `text` with every form of every secret, and whatever follows `Bearer`/`Basic`,
    /// replaced by [`REDACTED`].
    fn redact(&self, text: &str) -> String {
        redact_auth_schemes(&self.forms.redact(text))
    }
}

/// Every form in which `secret` could come back from a server: as is, percent-encoded
/// (both `+` and `%20` for a space), JSON-escaped, and base64 (standard and URL-safe,
/// with and without padding). Empty for secrets shorter than [`MIN_SECRET_LEN`].
pub fn forms(secret: &str) -> Vec<String> {
    if secret.chars().count() < MIN_SECRET_LEN {
        return Vec::new();
    }
    let mut out = vec![secret.to_string()];
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    out.push(form.replace('+', "%20"));
    out.push(form);
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(json.trim_matches('"').to_string());
        // Some encoders also escape `/`.
        out.push(json.trim_matches('"').replace('/', "\\/"));
    }
    let standard = base64(secret.as_bytes(), b'+', b'/');
    let url_safe = base64(secret.as_bytes(), b'-', b'_');
    for b in [standard, url_safe] {
        out.push(b.trim_end_matches('=').to_string());
        out.push(b);
    }
    out.sort();
    out.dedup();
    out
}

/// Remembers a long-lived secret (an application key, a proxy password, a proxy's
/// `user:password`) for [`clean`] and [`clean_log_line`].
pub fn remember(secret: &str) {
    if forms(secret).is_empty() {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if registry.lasting.iter().any(|s| s == secret) {
        return;
    }
    registry.lasting.push(secret.to_string());
    registry.redactor.forms.add(secret);
}

/// Remembers an access token; the oldest of more than [`REMEMBERED_TOKENS`] is
/// forgotten.
pub fn remember_token(token: &str) {
    if forms(token).is_empty() {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if registry.tokens.iter().any(|s| s == token) {
        return;
    }
    registry.tokens.push_back(token.to_string());
    if registry.tokens.len() > REMEMBERED_TOKENS {
        // The oldest is forgotten: an index of the rest (once per this many tokens).
        registry.tokens.pop_front();
        let registry = &mut *registry;
        registry.redactor = Redactor::new(
            registry
                .lasting
                .iter()
                .chain(registry.tokens.iter())
                .map(String::as_str),
        );
    } else {
        registry.redactor.forms.add(token);
    }
}

/// [`Redactor::clean`] with every secret the process knows.
pub fn clean(text: &[u8], limit: usize) -> String {
    current().redactor.clean(text, limit)
}

/// [`Redactor::clean_line`] with every secret the process knows.
pub fn clean_log_line(line: &[u8]) -> Vec<u8> {
    current().redactor.clean_line(line)
}

/// The process's secrets and the redactor of them.
#[derive(Default)]
struct Registry {
    lasting: Vec<String>,
    tokens: VecDeque<String>,
    redactor: Redactor,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(RwLock::default);

/// The process's redactor, read-locked: cleaning holds the lock for microseconds, and
/// only learning a secret takes it for writing.
fn current() -> RwLockReadGuard<'static, Registry> {
    REGISTRY.read().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `c` is escaped: control characters, Unicode line and paragraph separators,
/// and the bidirectional overrides and isolates that reorder what a terminal shows.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_controls(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `limit` bytes of `text`, cut at a character boundary; and whether it was
/// cut.
fn bound(text: &str, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text.to_string(), false);
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text[..cut].to_string(), true)
}

/// The schemes whose credentials follow them, as they may be spelled in echoed text.
const AUTH_SCHEMES: [&str; 2] = ["bearer", "basic"];

/// Whether `text` holds `Bearer` or `Basic` (any case) followed by a separator.
fn contains_auth_scheme(text: &[u8]) -> bool {
    let lower = text.to_ascii_lowercase();
    AUTH_SCHEMES.iter().any(|scheme| {
        memchr::memmem::find_iter(&lower, scheme.as_bytes())
            .any(|at| separator_len(&lower[at + scheme.len()..]) > 0)
    })
}

/// The length of the separator at the start of `rest`: spaces, `%20` or `+`.
fn separator_len(rest: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match &rest[n..] {
            [b' ' | b'+' | b'\t', ..] => n += 1,
            [b'%', b'2', b'0', ..] => n += 3,
            _ => return n,
        }
    }
}

/// RFC 7235 token68 characters, plus `%` for a percent-encoded one.
fn is_credential_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'%')
}

/// Replaces the credentials after every `Bearer` / `Basic` with [`REDACTED`].
fn redact_auth_schemes(text: &str) -> String {
    if !contains_auth_scheme(text.as_bytes()) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let scheme = AUTH_SCHEMES
            .iter()
            .find(|s| lower.as_bytes()[at..].starts_with(s.as_bytes()));
        let Some(scheme) = scheme else {
            at += 1;
            continue;
        };
        let start = at + scheme.len();
        let sep = separator_len(&bytes[start..]);
        let credential = bytes[start + sep..]
            .iter()
            .take_while(|&&b| is_credential_byte(b))
            .count();
        if sep == 0 || credential == 0 {
            at = start;
            continue;
        }
        // Every index here is at an ASCII byte, so a char boundary.
        out.push_str(&text[copied..start + sep]);
        out.push_str(REDACTED);
        at = start + sep + credential;
        copied = at;
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the tail of `text` begins `form` (at least [`MIN_PARTIAL_LEN`] bytes of it,
/// but not all of it), if it does: the plain definition, which the tests hold
/// [`FormIndex::partial_tail`] to.
#[cfg(test)]
fn partial_tail(text: &str, form: &str) -> Option<usize> {
    let longest = form.len().saturating_sub(1).min(text.len());
    (MIN_PARTIAL_LEN..=longest)
        .rev()
        .filter(|&n| form.is_char_boundary(n))
        .find(|&n| text.ends_with(&form[..n]))
        .map(|n| text.len() - n)
}

/// RFC 4648 base64 with padding over the alphabet ending in `c62`, `c63`.
fn base64(input: &[u8], c62: u8, c63: u8) -> String {
    const ABC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let symbol = |i: u32| -> char {
        match i {
            62 => char::from(c62),
            63 => char::from(c63),
            i => char::from(ABC[i as usize]),
        }
    };
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(symbol((n >> (18 - 6 * i)) & 63));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "k3y/Sp3c+al=Distinctive";

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes(), b'+', b'/'), o);
        }
        assert_eq!(base64(&[0xfb, 0xff], b'-', b'_'), "-_8=");
    }

    #[test]
    fn every_form_of_a_secret_is_redacted() {
        let r = Redactor::new([KEY, "user:pa ss"]);
        let encoded: String = url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
        for text in [
            format!("echo {KEY} end"),
            format!("echo {encoded} end"),
            format!("echo {} end", encoded.replace('+', "%20")),
            format!("echo {} end", KEY.replace('/', "\\/")),
            format!("echo {} end", base64(KEY.as_bytes(), b'+', b'/')),
            format!(
                "echo {} end",
                base64(KEY.as_bytes(), b'-', b'_').trim_end_matches('=')
            ),
            format!("echo {} end", base64(b"user:pa ss", b'+', b'/')),
        ] {
            assert_eq!(r.clean(text.as_bytes(), 1000), "echo *** end", "{text}");
        }
    }

    #[test]
    fn credentials_after_bearer_or_basic_are_redacted_known_or_not() {
        let r = Redactor::new([]);
        assert_eq!(
            r.clean(b"Authorization: Bearer eyJhbGciOi.x-y_z= next", 1000),
            "Authorization: Bearer *** next"
        );
        assert_eq!(
            r.clean(b"proxy-authorization: basic dXNlcjpwYXNz", 1000),
            "proxy-authorization: basic ***"
        );
        assert_eq!(r.clean(b"Bearer%20abc.def&x=1", 1000), "Bearer%20***&x=1");
        // The words alone are kept.
        assert_eq!(
            r.clean(b"basic auth failed; a bearer.", 1000),
            "basic *** failed; a bearer."
        );
        assert_eq!(r.clean(b"no scheme here", 1000), "no scheme here");
    }

    #[test]
    fn a_secret_cut_off_at_the_end_is_redacted() {
        let r = Redactor::new([KEY]);
        let text = format!("key was {}", &KEY[..8]);
        assert_eq!(r.clean(text.as_bytes(), 1000), "key was ***");
        // Three characters are not enough to tell.
        assert_eq!(r.clean(b"key was k3y", 1000), "key was k3y");
    }

    #[test]
    fn control_characters_are_escaped_and_cannot_forge_a_line() {
        let r = Redactor::new([]);
        assert_eq!(
            r.clean(b"bad\r\n2026-01-01T00:00:00Z  INFO forged\x1b[2J\x07", 1000),
            "bad\\r\\n2026-01-01T00:00:00Z  INFO forged\\u{1b}[2J\\u{7}"
        );
        assert_eq!(
            r.clean("a\u{2028}b\u{202e}c".as_bytes(), 1000),
            "a\\u{2028}b\\u{202e}c"
        );
        assert_eq!(r.clean(b"a\xffb", 1000), "a\u{fffd}b");
    }

    #[test]
    fn the_result_is_bounded_at_a_character_boundary() {
        let r = Redactor::new([]);
        assert_eq!(r.clean(b"abcdef", 3), "abc…");
        assert_eq!(r.clean("ééé".as_bytes(), 3), "é…");
        assert_eq!(r.clean(b"abc", 3), "abc");
    }

    #[test]
    fn short_secrets_are_not_searched_for() {
        let r = Redactor::new(["k"]);
        assert_eq!(r.clean(b"keep k", 100), "keep k");
    }

    #[test]
    fn a_log_line_keeps_its_newline_and_loses_its_controls() {
        let r = Redactor::new([KEY]);
        assert_eq!(r.clean_line(b"plain line\n"), b"plain line\n");
        assert_eq!(
            r.clean_line(format!("a {KEY}\nforged\x1b\n").as_bytes()),
            b"a ***\\nforged\\u{1b}\n"
        );
        let long = format!("{}\n", "x".repeat(MAX_LOG_LINE + 10));
        let cleaned = r.clean_line(long.as_bytes());
        assert_eq!(cleaned.len(), MAX_LOG_LINE + "…\n".len());
    }

    #[test]
    fn the_registry_cleans_with_what_was_remembered() {
        let token = "tok-registry-test-8d1f0a";
        assert!(clean(token.as_bytes(), 100).contains(token));
        remember_token(token);
        assert_eq!(clean(format!("x {token} y").as_bytes(), 100), "x *** y");
        remember("lasting-registry-test-77c2");
        assert_eq!(
            String::from_utf8(clean_log_line(b"k=lasting-registry-test-77c2\n")).unwrap(),
            "k=***\n"
        );
    }

    fn secret() -> impl Strategy<Value = String> {
        // No `*` (what a secret becomes) and no `\\`.
        "[ -)+-\\[\\]-~]{4,24}"
    }

    #[test]
    fn secrets_added_one_at_a_time_are_all_redacted() {
        let mut redactor = Redactor::default();
        let secrets: Vec<String> = (0..2000)
            .map(|i| format!("key-{i:04}-abcdefghijklmnopqrstuvwxyz0123456789"))
            .collect();
        let started = tokio::time::Instant::now();
        for secret in &secrets {
            redactor.forms.add(secret);
        }
        let took = started.elapsed();
        for i in [0, 1, 1000, 1998, 1999] {
            let text = format!("a {} b", secrets[i]);
            assert_eq!(redactor.clean(text.as_bytes(), 1000), "a *** b", "{i}");
        }
        // Minutes in a debug build when an automaton of every form was built again
        // at each secret.
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn the_longest_form_at_the_leftmost_position_is_replaced() {
        let r = Redactor::new(["abcdef", "abcdefgh", "defghijk"]);
        assert_eq!(r.clean(b"x abcdefghijk y", 100), "x ***ijk y");
        assert_eq!(r.clean(b"x abcdefg y", 100), "x ***g y");
        assert_eq!(r.clean(b"abcdefabcdefgh", 100), "******");
        assert_eq!(r.clean("é abcdef é".as_bytes(), 100), "é *** é");
    }

    #[test]
    fn a_thousand_tenants_secrets_are_cleaned_quickly() {
        // A thousand keys and a thousand tokens: cleaning a /health message used to try
        // every one of their ~18,000 forms at every length, ~50 ms per message in a
        // debug build, and with every tenant doing it once a second the process did
        // nothing else.
        let secrets: Vec<String> = (0..2000)
            .map(|i| format!("secret-{i:04}-0123456789abcdefghijklmnopqrstuvwxyz"))
            .collect();
        let r = Redactor::new(secrets.iter().map(String::as_str));
        let message = format!(
            "token request failed: 503 from the server; body: {}",
            &secrets[7][..20]
        );
        let started = tokio::time::Instant::now();
        for _ in 0..100 {
            assert!(r.clean(message.as_bytes(), 1024).ends_with("body: ***"));
        }
        let each = started.elapsed() / 100;
        assert!(
            each < std::time::Duration::from_millis(2),
            "{each:?} per message"
        );
    }

    proptest! {
        #[test]
        fn no_form_of_a_secret_survives(
            secret in secret(),
            before in "[ -~\\n\\r\\x1b]{0,40}",
            after in "[ -~\\n\\r\\x1b]{0,40}",
            form in 0usize..8,
        ) {
            let r = Redactor::new([secret.as_str()]);
            let all = forms(&secret);
            let chosen = &all[form % all.len()];
            let text = format!("{before}{chosen}{after}");
            let out = r.clean(text.as_bytes(), 10_000);
            for f in &all {
                prop_assert!(!out.contains(f.as_str()), "{f:?} in {out:?}");
            }
        }

        #[test]
        fn the_partial_tail_search_finds_what_trying_every_form_finds(
            secrets in proptest::collection::vec(secret(), 1..6),
            text in "[ -~é東]{0,30}",
            cut in proptest::option::of((0usize..6, 0usize..40)),
        ) {
            let r = Redactor::new(secrets.iter().map(String::as_str));
            // Often end the text inside a form, as a cut excerpt does.
            let mut text = text;
            if let Some((which, len)) = cut {
                let forms: Vec<&String> = r.forms.sorted.iter().collect();
                let form = forms[which % forms.len()];
                let mut len = len.min(form.len());
                while !form.is_char_boundary(len) {
                    len -= 1;
                }
                text.push_str(&form[..len]);
            }
            let expected = r.forms.sorted.iter().filter_map(|f| partial_tail(&text, f)).min();
            prop_assert_eq!(r.forms.partial_tail(&text), expected, "{:?}", text);
        }

        #[test]
        fn the_output_is_bounded_and_has_no_control_character(
            text in proptest::collection::vec(any::<u8>(), 0..400),
            limit in 0usize..300,
        ) {
            let out = Redactor::new(["some-secret"]).clean(&text, limit);
            prop_assert!(out.len() <= limit + '…'.len_utf8());
            prop_assert!(!out.chars().any(needs_escape), "{out:?}");
        }

        #[test]
        fn a_cleaned_log_line_is_one_line(text in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut line = text.clone();
            line.push(b'\n');
            let out = Redactor::new([]).clean_line(&line);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert_eq!(out.last(), Some(&b'\n'));
            prop_assert!(!out.contains(&0x1b));
        }
    }
}
