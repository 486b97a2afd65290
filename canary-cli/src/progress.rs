//! Progress for people during long waits: on a terminal, a bar per region with the step, the
//! traffic weight and the time left (indicatif); elsewhere (CI logs), plain timestamped log
//! lines, at most one a minute per region while a judge looks.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use canary_core::{Progress, ProgressEvent, StepPlace};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug)]
pub struct Display {
    bars: Option<Arc<Bars>>,
    /// Real seconds per nominal second (`CANARY_TIME_SCALE`; 0 in a dry run).
    factor: f64,
    /// When each region last printed a judging line (log mode).
    printed: Mutex<BTreeMap<String, Instant>>,
}

#[derive(Debug)]
struct Bars {
    multi: MultiProgress,
    /// Per region: the bar, when its wait began, and how long it may last (ms).
    bars: Mutex<BTreeMap<String, (ProgressBar, Instant, u64)>>,
}

impl Display {
    /// Bars when stderr is a terminal, log lines otherwise; `factor` scales the waits shown.
    pub fn new(factor: f64) -> Arc<Display> {
        let bars = std::io::stderr().is_terminal().then(|| {
            let bars = Arc::new(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(BTreeMap::new()),
            });
            tick(Arc::downgrade(&bars));
            bars
        });
        Arc::new(Display {
            bars,
            factor,
            printed: Mutex::new(BTreeMap::new()),
        })
    }

    /// A writer for log lines that does not tear the bars: each line is written while they
    /// are hidden.
    pub fn log_writer(self: &Arc<Self>) -> LogWriter {
        LogWriter {
            multi: self.bars.as_ref().map(|b| b.multi.clone()),
        }
    }

    fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.factor).unwrap_or(Duration::MAX)
    }

    /// Starts the region's bar for a wait of `length` (`restart`), or extends the current one
    /// to end `length` from now.
    fn show(
        &self,
        bars: &Bars,
        place: &StepPlace<'_>,
        message: String,
        length: Duration,
        restart: bool,
    ) {
        let key = place.region.unwrap_or_default().to_owned();
        let mut all = bars.bars.lock().unwrap_or_else(|p| p.into_inner());
        let length_ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX).max(1);
        let entry = all.entry(key).or_insert_with(|| {
            let bar = bars.multi.add(ProgressBar::new(length_ms));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {msg:48} [{bar:30.cyan/blue}] {elapsed_precise} ({prefix} left)",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            (bar, Instant::now(), length_ms)
        });
        if restart {
            entry.1 = Instant::now();
            entry.0.reset_elapsed();
        }
        // What has passed since the wait began, plus what may still come.
        entry.2 =
            length_ms.saturating_add(u64::try_from(entry.1.elapsed().as_millis()).unwrap_or(0));
        entry.0.set_length(entry.2);
        entry.0.set_prefix(human(length));
        entry.0.set_message(message);
    }
}

impl Progress for Display {
    fn event(&self, event: &ProgressEvent<'_>) {
        match (event, &self.bars) {
            (ProgressEvent::WarmUp { place, duration }, Some(bars)) => {
                let d = self.scaled(*duration);
                self.show(bars, place, format!("{place}: warm-up"), d, true);
            }
            (ProgressEvent::WarmUp { place, duration }, None) => {
                tracing::info!(target: "canary", "{place}: warming up for {}", human(self.scaled(*duration)));
            }
            (
                ProgressEvent::Judging {
                    place,
                    judge,
                    look,
                    remaining,
                    ..
                },
                Some(bars),
            ) => {
                let message = format!("{place}: {judge} judge, look {look}");
                self.show(bars, place, message, self.scaled(*remaining), *look == 1);
            }
            (
                ProgressEvent::Judging {
                    place,
                    judge,
                    look,
                    remaining,
                    ..
                },
                None,
            ) => {
                let key = place.region.unwrap_or_default().to_owned();
                let mut printed = self.printed.lock().unwrap_or_else(|p| p.into_inner());
                let due = printed
                    .get(&key)
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
                if *look == 1 || due {
                    printed.insert(key, Instant::now());
                    tracing::info!(
                        target: "canary",
                        "{place}: the {judge} judge looks (look {look}); it decides within {}",
                        human(self.scaled(*remaining))
                    );
                }
            }
            (ProgressEvent::Decided { place, decision }, Some(bars)) => {
                let key = place.region.unwrap_or_default();
                let mut all = bars.bars.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((bar, _, _)) = all.remove(key) {
                    bar.finish_and_clear();
                }
                let _ = bars.multi.println(format!("{place}: {decision}"));
            }
            // The validator's own log line says it, with the reason.
            (ProgressEvent::Decided { .. }, None) => {}
            _ => {}
        }
    }
}

/// Moves every bar to the time elapsed, and its "left" to what remains; ends with the display.
fn tick(bars: Weak<Bars>) {
    std::thread::spawn(move || {
        while let Some(b) = bars.upgrade() {
            {
                let all = b.bars.lock().unwrap_or_else(|p| p.into_inner());
                for (bar, start, length) in all.values() {
                    let done = u64::try_from(start.elapsed().as_millis())
                        .unwrap_or(u64::MAX)
                        .min(*length);
                    bar.set_position(done);
                    bar.set_prefix(human(Duration::from_millis(length - done)));
                }
            }
            drop(b);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
}

/// `1h05m`, `9m30s`, `42s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Log output that hides the bars while a line is written (see [`Display::log_writer`]).
#[derive(Clone, Debug)]
pub struct LogWriter {
    multi: Option<MultiProgress>,
}

/// One log line on its way to stderr.
#[derive(Debug)]
pub struct LineBuffer {
    multi: Option<MultiProgress>,
    buf: Vec<u8>,
}

impl Write for LineBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.buf);
        };
        match &self.multi {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer {
            multi: self.multi.clone(),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(570)), "9m30s");
        assert_eq!(human(Duration::from_secs(3900)), "1h05m");
    }
}
