//! Standard output for what a command prints. A reader that has gone (`rewind runs list |
//! head`) ends the output: its error is marked as [`StdoutClosed`], and `main` exits quietly on
//! that mark alone, so a broken pipe anywhere else (a socket during a download) stays an error.

use std::io::{self, Write};

/// The reader of standard output has gone.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Standard output whose broken-pipe errors carry the [`StdoutClosed`] mark.
pub struct Stdout(io::Stdout);

pub fn stdout() -> Stdout {
    Stdout(io::stdout())
}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Whether `e` is standard output's reader having gone, and nothing else.
pub fn closed(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{closed, mark};

    #[test]
    fn only_a_marked_broken_pipe_is_a_closed_stdout() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(closed(&anyhow::Error::from(mark(pipe()))));
        assert!(closed(
            &anyhow::Error::from(mark(pipe())).context("listing runs")
        ));
        // A broken pipe that did not come through this writer (a socket, a child's stdin).
        assert!(!closed(&anyhow::Error::from(pipe())));
        assert!(!closed(&anyhow::Error::from(mark(io::Error::other(
            "disk full"
        )))));
    }
}
