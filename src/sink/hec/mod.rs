//! Splunk HTTP Event Collector (`destinations.md` §4): the request bodies
//! ([`request`]) and what each response means ([`response`]). Both are pure; the
//! sink that sends them over HTTP builds on them.

pub mod request;
pub mod response;
