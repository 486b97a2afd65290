//! Logs on stderr, one line per event.

use std::io::IsTerminal;

use crate::progress;

/// Logs on stderr: `RUST_LOG` if set, else `canary=info` (`-v`: debug, `-vv`: trace, `-q`:
/// errors only); colour only on a terminal without `NO_COLOR`.
pub(crate) fn logging(verbose: u8, quiet: bool, writer: Option<progress::LogWriter>) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "canary=info,canary_core=info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    let _ = match writer {
        Some(w) => builder.with_writer(OneLine(w)).try_init(),
        None => builder.with_writer(OneLine(std::io::stderr)).try_init(),
    };
}

/// Every log event on one line, whatever its fields hold: a line break inside an event (a
/// client's value, a server's error body) is written as `\n`, so nothing can forge a line.
struct OneLine<M>(M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for OneLine<M>
{
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(self.0.make_writer())
    }
}

/// The writer of [`OneLine`]: the formatter writes each event whole, ending in its newline.
struct OneLineWriter<W>(W);

impl<W: std::io::Write> std::io::Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut escaped = Vec::with_capacity(buf.len() + 8);
        for &b in body {
            match b {
                b'\n' => escaped.extend_from_slice(b"\\n"),
                b'\r' => escaped.extend_from_slice(b"\\r"),
                b => escaped.push(b),
            }
        }
        escaped.extend_from_slice(end);
        self.0.write_all(&escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
