//! Token lifecycle, the SSE parser and the authenticated event stream.

pub mod oauth;
pub mod sse;
pub mod stream;
