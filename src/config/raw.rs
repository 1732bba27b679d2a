//! INI text → raw sections: the syntax step of configuration loading.
//!
//! This module owns how the text of `config.ini` becomes named sections of `key = value`
//! strings, and nothing about what the values mean (that is [`super::load`]). It reads
//! the Python connector's files unchanged, so it follows Python's `configparser` where
//! rust-ini's defaults differ:
//!
//! - escapes are off and quotes are literal: `C:\corp\certs\ca.pem` stays a path and
//!   `leef_delimiter = "` is a double quote;
//! - key names are case-insensitive (they are lower-cased), section names are not;
//! - `%%` in a value is one `%` (configparser's interpolation escape, which every working
//!   Python configuration had to use for a literal percent sign);
//! - a leading UTF-8 byte order mark is ignored;
//! - a key outside any section, a section that appears twice and a key set twice in one
//!   section are problems, as they are for configparser.
//!
//! Comments are whole lines starting with `#` or `;`; there are no inline comments (as
//! in configparser's defaults), so `port = 514 ; tcp` is the value `514 ; tcp`.

use super::problem::Problem;
use ini::{Ini, ParseOption};
use std::path::Path;

/// One `[section]` of the file, keys lower-cased, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSection {
    /// The name between the brackets, trimmed, case as written.
    pub name: String,
    /// `(key, value)` pairs; each key at most once (later duplicates are reported and
    /// dropped).
    pub entries: Vec<(String, String)>,
}

impl RawSection {
    /// The value of `key`, if the section sets it (possibly to the empty string).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The whole file as sections, in file order, each name at most once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawIni {
    pub sections: Vec<RawSection>,
}

impl RawIni {
    /// The section called `name`, if present.
    pub fn section(&self, name: &str) -> Option<&RawSection> {
        self.sections.iter().find(|s| s.name == name)
    }
}

/// Parses INI text. Syntax problems are pushed to `problems`; whatever could be read is
/// returned (an unparseable file gives no sections). Never panics.
pub fn parse(file: &Path, text: &str, problems: &mut Vec<Problem>) -> RawIni {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: false,
        enabled_preserve_key_leading_whitespace: false,
    };
    let ini = match Ini::load_from_str_opt(text, options) {
        Ok(ini) => ini,
        Err(e) => {
            problems.push(Problem::file(
                file,
                format!("cannot parse line {}: {}", e.line, syntax_reason(&e.msg)),
            ));
            return RawIni::default();
        }
    };

    let mut raw = RawIni::default();
    for (name, properties) in ini.iter() {
        let Some(name) = name else {
            for (key, _) in properties.iter() {
                problems.push(Problem::file(
                    file,
                    format!(
                        "key {:?} is outside any section; put it under [lookout], [syslog], [proxy] or [connector]",
                        key.to_lowercase()
                    ),
                ));
            }
            continue;
        };
        if raw.section(name).is_some() {
            problems.push(Problem::section(
                file,
                name,
                "appears more than once; merge the sections into one",
            ));
            continue;
        }
        let mut section = RawSection {
            name: name.to_string(),
            entries: Vec::new(),
        };
        for (key, value) in properties.iter() {
            let key = key.to_lowercase();
            let value = value.replace("%%", "%");
            if section.get(&key).is_some() {
                problems.push(Problem::value(
                    file,
                    name,
                    &key,
                    &value,
                    "set more than once in this section; keep one",
                ));
                continue;
            }
            section.entries.push((key, value));
        }
        raw.sections.push(section);
    }
    raw
}

/// rust-ini's message in the words of this program: what is wrong; what to write.
fn syntax_reason(msg: &str) -> String {
    let what = if msg.contains("EOF") {
        "unexpected end of file (a key without `= value`, or a `[section` without `]`)".to_string()
    } else if msg.contains("inline comment") {
        return "a comment after a header or value; put comments on their own line".to_string();
    } else {
        msg.trim_end_matches('.').to_lowercase()
    };
    format!("{what}; write `[section]` headers and `key = value` lines")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> RawIni {
        let mut problems = Vec::new();
        let raw = parse(Path::new("config.ini"), text, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        raw
    }

    fn problems_of(text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        parse(Path::new("config.ini"), text, &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn backslashes_and_quotes_are_literal() {
        let raw = parse_ok(
            "[syslog]\nca_file = C:\\corp\\certs\\ca.pem\nleef_delimiter = \"\napp_name = 'x'\n",
        );
        let s = raw.section("syslog").unwrap();
        assert_eq!(s.get("ca_file"), Some("C:\\corp\\certs\\ca.pem"));
        assert_eq!(s.get("leef_delimiter"), Some("\""));
        assert_eq!(s.get("app_name"), Some("'x'"));
    }

    #[test]
    fn keys_are_lower_cased_and_values_trimmed() {
        let raw = parse_ok("[lookout]\n  API_Key  =   abc  \n");
        assert_eq!(raw.section("lookout").unwrap().get("api_key"), Some("abc"));
    }

    #[test]
    fn double_percent_is_one_percent() {
        let raw = parse_ok("[proxy]\npassword = 50%%off\n");
        assert_eq!(
            raw.section("proxy").unwrap().get("password"),
            Some("50%off")
        );
    }

    #[test]
    fn bom_crlf_and_comments_are_ignored() {
        let raw = parse_ok("\u{feff}# comment\r\n; other\r\n[syslog]\r\nport = 515\r\n");
        assert_eq!(raw.section("syslog").unwrap().get("port"), Some("515"));
    }

    #[test]
    fn empty_values_are_kept() {
        let raw = parse_ok("[syslog]\napp_name =\n");
        assert_eq!(raw.section("syslog").unwrap().get("app_name"), Some(""));
    }

    #[test]
    fn key_outside_a_section() {
        assert_eq!(
            problems_of("port = 1\n[syslog]\n"),
            [
                "config.ini: key \"port\" is outside any section; put it under [lookout], [syslog], [proxy] or [connector]"
            ]
        );
    }

    #[test]
    fn duplicate_section() {
        assert_eq!(
            problems_of("[syslog]\nport = 1\n[syslog]\nhost = x\n"),
            ["config.ini: [syslog]: appears more than once; merge the sections into one"]
        );
    }

    #[test]
    fn duplicate_key() {
        assert_eq!(
            problems_of("[syslog]\nport = 1\nport = 2\n"),
            ["config.ini: [syslog] port = \"2\": set more than once in this section; keep one"]
        );
    }

    #[test]
    fn duplicate_secret_key_hides_the_value() {
        assert_eq!(
            problems_of("[lookout]\napi_key = a\napi_key = b\n"),
            [
                "config.ini: [lookout] api_key = \"***\": set more than once in this section; keep one"
            ]
        );
    }

    #[test]
    fn syntax_error_at_end_of_file() {
        assert_eq!(
            problems_of("[syslog]\nport"),
            [
                "config.ini: cannot parse line 2: unexpected end of file (a key without `= value`, or a `[section` without `]`); write `[section]` headers and `key = value` lines"
            ]
        );
    }

    #[test]
    fn syntax_error_inline_comment() {
        assert_eq!(
            problems_of("[syslog] ; destination\nport = 1\n"),
            [
                "config.ini: cannot parse line 1: a comment after a header or value; put comments on their own line"
            ]
        );
    }

    #[test]
    fn syntax_error() {
        assert_eq!(
            problems_of("[syslog]\n= 5\n"),
            [
                "config.ini: cannot parse line 2: missing key; write `[section]` headers and `key = value` lines"
            ]
        );
    }
}
