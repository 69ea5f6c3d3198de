//! A read-ahead thread: fills buffers from a reader (typically a decompressor) while the caller
//! parses the previous ones, so decoding overlaps with parsing.
//!
//! Buffers travel to the caller over a bounded channel and come back for reuse, so steady state
//! allocates nothing and touches no fresh pages. Each buffer keeps `head` free bytes before its
//! data: the caller can put the unfinished line of the previous buffer there and go on parsing
//! in place, without copying the new data.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender};

/// Buffers filled and waiting for the caller (besides the one being filled and the one parsed).
const DEPTH: usize = 2;

/// Filled buffers from a background reader thread.
pub(crate) struct ReadAhead {
    rx: Receiver<io::Result<(Vec<u8>, usize)>>,
    back: Sender<Vec<u8>>,
    head: usize,
}

impl ReadAhead {
    /// Starts a thread reading `src` in `chunk`-byte pieces until its end, an error, or until
    /// the caller drops the `ReadAhead`.
    pub(crate) fn spawn(
        mut src: Box<dyn Read + Send>,
        head: usize,
        chunk: usize,
    ) -> io::Result<ReadAhead> {
        let (tx, rx) = mpsc::sync_channel::<io::Result<(Vec<u8>, usize)>>(DEPTH);
        let (back, back_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("ember-readahead".into())
            .spawn(move || {
                let want = chunk;
                loop {
                    let mut buf = back_rx.try_recv().unwrap_or_default();
                    if buf.len() < head + want {
                        buf.resize(head + want, 0);
                    }
                    let mut n = 0;
                    let res = loop {
                        if n == want {
                            break Ok(());
                        }
                        match src.read(&mut buf[head + n..head + want]) {
                            Ok(0) => break Ok(()),
                            Ok(k) => n += k,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    if n > 0 && tx.send(Ok((buf, n))).is_err() {
                        return; // the caller is gone
                    }
                    if let Err(e) = res {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    if n < want {
                        return; // end of stream: dropping `tx` tells the caller
                    }
                }
            })?;
        Ok(ReadAhead { rx, back, head })
    }

    /// Free bytes before the data of every buffer.
    pub(crate) fn head(&self) -> usize {
        self.head
    }

    /// The next buffer and how many data bytes follow its head; `Ok(None)` at the end.
    pub(crate) fn next(&mut self) -> io::Result<Option<(Vec<u8>, usize)>> {
        match self.rx.recv() {
            Ok(Ok(got)) => Ok(Some(got)),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvError) => Ok(None),
        }
    }

    /// Returns a buffer for reuse.
    pub(crate) fn give_back(&mut self, buf: Vec<u8>) {
        if !buf.is_empty() {
            let _ = self.back.send(buf);
        }
    }
}
