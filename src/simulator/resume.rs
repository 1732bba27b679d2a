//! Where a stream request starts and which types it gets
//! (`docs/event-stream.md#simulator-endpoints`):
//! `id` (strictly after, or at with `resume_at_id`), else `Last-Event-ID`, else
//! `start_time`, and `id=0` meaning oldest or now. Pure apart from reading the log.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::event_log::EventLog;
use super::generate::EventKind;
use super::id;
use super::options::{IdZero, SimOptions};

/// The outcome of a well-formed stream request.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// Index in the tenant's log of the first event to consider.
    pub index: usize,
    /// The types to serve.
    pub kinds: Vec<EventKind>,
    /// A remark for the request log.
    pub note: Option<String>,
}

/// Works out the start of a stream from its raw query and `Last-Event-ID` header.
/// The error is the `error_description` of a 400.
pub fn start(
    query: Option<&str>,
    last_event_id: Option<&str>,
    options: &SimOptions,
    log: &EventLog,
) -> Result<Start, String> {
    let mut id_param = None;
    let mut start_time = None;
    let mut types = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "id" => id_param = Some(value.into_owned()),
            "start_time" => start_time = Some(value.into_owned()),
            "types" => types = Some(value.into_owned()),
            _ => {}
        }
    }
    let kinds = match types {
        None => options.types.clone(),
        Some(list) => {
            let mut kinds = Vec::new();
            for name in list.split(',') {
                let kind = EventKind::from_name(name.trim())
                    .ok_or_else(|| format!("unknown event type {name:?} in types"))?;
                if options.types.contains(&kind) && !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            kinds
        }
    };
    let last_event_id = last_event_id.filter(|value| !value.is_empty());
    let mut note = None;
    if let (Some(id), Some(header)) = (&id_param, last_event_id)
        && id != header
    {
        note = Some(format!(
            "id {id:?} and Last-Event-ID {header:?} differ; id wins"
        ));
    }
    let index = match (id_param.as_deref(), last_event_id) {
        (Some("0"), _) => match options.id_zero {
            IdZero::Oldest => 0,
            IdZero::Now => log.len(),
        },
        (Some(position), _) | (None, Some(position)) => {
            let parsed =
                id::parse(position).ok_or_else(|| format!("id {position:?} is not an event id"))?;
            log.position_of_id(parsed, options.resume_at_id)
        }
        (None, None) => match start_time {
            Some(text) => log.position_of_time(parse_instant(&text)?.timestamp_millis()),
            None => 0,
        },
    };
    Ok(Start { index, kinds, note })
}

/// Parses an ISO-8601 instant; without an offset it is UTC. A `+` of the offset that a
/// client left unencoded arrives as a space, which is put back.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim().replace(' ', "+");
    if let Ok(time) = DateTime::parse_from_rfc3339(&text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|_| format!("start_time {text:?} is not an ISO-8601 instant"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::event_log::generate_history;
    use crate::simulator::generate::Generator;

    fn log() -> EventLog {
        let mut generator = Generator::new(1, "demo", &EventKind::ALL);
        EventLog::new(generate_history(
            &mut generator,
            1_793_866_000_000,
            1_793_866_100_000,
            20,
        ))
    }

    #[test]
    fn instants_with_and_without_offsets() {
        let utc = parse_instant("2026-11-05T08:12:44+00:00").expect("parses");
        assert_eq!(parse_instant("2026-11-05T08:12:44 00:00"), Ok(utc));
        assert_eq!(parse_instant("2026-11-05T08:12:44"), Ok(utc));
        assert_eq!(parse_instant("2026-11-05T09:12:44+01:00"), Ok(utc));
        assert_eq!(parse_instant("2026-11-05T08:12:44.000Z"), Ok(utc));
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn the_rules_in_order() {
        let log = log();
        let options = SimOptions::default();
        let fifth = id::format(log.get(4).expect("event").id);
        let at = |query: &str, header: Option<&str>| {
            start(Some(query), header, &options, &log).map(|start| start.index)
        };
        assert_eq!(at(&format!("id={fifth}"), None), Ok(5));
        assert_eq!(at("", Some(&fifth)), Ok(5));
        assert_eq!(at("id=0", Some(&fifth)), Ok(0));
        assert_eq!(at("types=THREAT%2CDEVICE", None), Ok(0));
        assert!(at("types=THREAT%2CVIRUS", None).is_err());
        assert!(at("start_time=soon", None).is_err());
        assert!(at("id=nope", None).is_err());
        let note = start(Some(&format!("id={fifth}")), Some("other"), &options, &log)
            .expect("ok")
            .note;
        assert!(note.is_some());
        let inclusive = SimOptions {
            resume_at_id: true,
            id_zero: IdZero::Now,
            ..SimOptions::default()
        };
        assert_eq!(
            start(Some(&format!("id={fifth}")), None, &inclusive, &log).map(|s| s.index),
            Ok(4)
        );
        assert_eq!(
            start(Some("id=0"), None, &inclusive, &log).map(|s| s.index),
            Ok(20)
        );
    }
}
