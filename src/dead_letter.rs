//! Dead letters: what could not be formatted or decoded, kept instead of lost.
//!
//! `<state_dir>/dead-letter/<entity_name>.jsonl` gets one JSON object per line with the
//! tenant, the time, the reason and the raw data, and `destination` (its name) when a
//! destination refused the record (a Splunk HEC per-event error). The stream position then moves past
//! the item; the operator can inspect and replay the file by hand. Appends are rare
//! (only for malformed input), so each one opens, appends and syncs the file.

use crate::event::DeadLetter;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One tenant's dead-letter file.
#[derive(Debug, Clone)]
pub struct DeadLetterFile {
    entity_name: String,
    path: PathBuf,
}

#[derive(Serialize)]
struct Line<'a> {
    tenant: &'a str,
    time: String,
    reason: &'a str,
    raw: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
}

impl DeadLetterFile {
    /// The file of `entity_name` below `state_dir`.
    pub fn new(state_dir: &Path, entity_name: &str) -> Self {
        Self {
            entity_name: entity_name.to_string(),
            path: state_dir
                .join("dead-letter")
                .join(format!("{entity_name}.jsonl")),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the letters, one line each, and syncs the file.
    pub fn append(&self, letters: &[DeadLetter]) -> std::io::Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut text = Vec::new();
        for letter in letters {
            let line = Line {
                tenant: &self.entity_name,
                time: time.clone(),
                reason: &letter.reason,
                raw: &letter.raw,
                destination: letter.destination.as_deref(),
            };
            serde_json::to_writer(&mut text, &line)?;
            text.push(b'\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&text)?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_letter() {
        let dir = tempfile::tempdir().unwrap();
        let file = DeadLetterFile::new(dir.path(), "acme");
        let letter = DeadLetter {
            reason: "invalid json: expected value".into(),
            raw: "{not json\n".into(),
            destination: None,
        };
        file.append(std::slice::from_ref(&letter)).unwrap();
        file.append(&[letter]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("dead-letter/acme.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["tenant"], "acme");
        assert_eq!(lines[0]["reason"], "invalid json: expected value");
        assert_eq!(lines[0]["raw"], "{not json\n");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
