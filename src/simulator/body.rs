//! The streaming response body: pieces handed over by the connection's writer task.
//!
//! Two things here are deliberate. After each piece the body reports "pending" once
//! (waking itself at once), which makes hyper flush before it asks for the next piece:
//! pieces therefore leave as separate writes, as `chunk_bytes` promises, and nothing
//! waits in a buffer. And an [`Piece::Abort`] turns into a body error, which makes
//! hyper drop the connection without ending the body cleanly (no terminating chunk).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// What the writer task sends.
#[derive(Debug)]
pub enum Piece {
    /// Bytes to write.
    Data(Bytes),
    /// Drop the connection now.
    Abort,
}

/// The body side of the channel.
#[derive(Debug)]
pub struct PieceBody {
    rx: mpsc::Receiver<Piece>,
    flush_first: bool,
}

impl PieceBody {
    /// A body reading from `rx`.
    pub fn new(rx: mpsc::Receiver<Piece>) -> PieceBody {
        PieceBody {
            rx,
            flush_first: false,
        }
    }
}

impl Stream for PieceBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.flush_first {
            self.flush_first = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Piece::Data(bytes))) => {
                self.flush_first = true;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Piece::Abort)) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "simulated connection drop",
            )))),
        }
    }
}
