//! TEMPORARY STAND-IN (stream branch): same signatures as sse.md §2 so that the
//! source compiles before the real parser lands from `main`. Replaced at the merge.

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub event: String,
    pub data: Option<String>,
    pub last_id: String,
    pub id_field: bool,
    pub retry: Option<u64>,
}

/// Bytes thrown away at end of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discarded {
    pub bytes: usize,
}

/// Parser errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("event larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// Stand-in parser.
#[derive(Debug)]
pub struct Parser {
    limit: usize,
    tail: Vec<u8>,
    msg_bytes: usize,
    after_cr: bool,
    bom_checked: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: String,
    id_field: bool,
    retry: Option<u64>,
    any_field: bool,
}

impl Parser {
    pub fn new(max_event_size: usize) -> Parser {
        Parser {
            limit: max_event_size,
            tail: Vec::new(),
            msg_bytes: 0,
            after_cr: false,
            bom_checked: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
            last_id: String::new(),
            id_field: false,
            retry: None,
            any_field: false,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, SseError> {
        let mut out = Vec::new();
        self.feed_into(bytes, &mut out)?;
        Ok(out)
    }

    pub fn feed_into(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), SseError> {
        for &b in bytes {
            if !self.bom_checked {
                self.tail.push(b);
                let bom = [0xEF, 0xBB, 0xBF];
                if self.tail.len() <= 3 && self.tail[..] == bom[..self.tail.len()] {
                    if self.tail.len() == 3 {
                        self.tail.clear();
                        self.bom_checked = true;
                    }
                    continue;
                }
                self.bom_checked = true;
                let pending = std::mem::take(&mut self.tail);
                self.feed_into(&pending, out)?;
                continue;
            }
            if b == b'\n' && self.after_cr {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            self.msg_bytes += 1;
            if self.msg_bytes > self.limit {
                return Err(SseError::EventTooLarge { limit: self.limit });
            }
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.tail).into_owned();
                self.tail.clear();
                self.line(&line, out);
            } else {
                self.tail.push(b);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Discarded {
        Discarded {
            bytes: self.msg_bytes,
        }
    }

    fn line(&mut self, line: &str, out: &mut Vec<Frame>) {
        if line.is_empty() {
            self.msg_bytes = 0;
            if self.any_field {
                let data = if self.has_data {
                    let mut d = std::mem::take(&mut self.data);
                    if d.ends_with('\n') {
                        d.pop();
                    }
                    Some(d)
                } else {
                    None
                };
                let event = std::mem::take(&mut self.event);
                out.push(Frame {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                    last_id: self.last_id.clone(),
                    id_field: self.id_field,
                    retry: self.retry,
                });
            }
            self.data.clear();
            self.has_data = false;
            self.id_field = false;
            self.retry = None;
            self.any_field = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" => {
                if !value.contains('\0') {
                    self.last_id = value.to_string();
                    self.id_field = true;
                }
            }
            "retry" => {
                if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) {
                    self.retry = Some(value.parse().unwrap_or(u64::MAX));
                }
            }
            _ => return,
        }
        self.any_field = true;
    }
}
