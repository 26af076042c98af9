//! Progress of long reads and plans on standard error while it is a terminal: the entries and
//! requests of the read as they come, then the step under way. Nothing when standard error is a
//! pipe or a file, so scripts and logs get only the output and the errors.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::directory::progress::Progress;

/// A spinner line on the terminal, cleared when dropped.
pub struct Shown {
    bar: ProgressBar,
    step: Arc<Mutex<Option<String>>>,
    ticker: tokio::task::JoinHandle<()>,
}

/// The counter to give the read, and what shows it: `None` when standard error is no terminal.
pub fn start() -> (Option<Arc<Progress>>, Option<Shown>) {
    if !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let progress = Arc::new(Progress::default());
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    // Drawn at once: a read shorter than a tick still shows that it happened.
    bar.set_message("reading the directory");
    bar.tick();
    bar.enable_steady_tick(Duration::from_millis(120));
    let step: Arc<Mutex<Option<String>>> = Arc::default();
    let ticker = tokio::spawn({
        let (bar, step, progress) = (bar.clone(), step.clone(), progress.clone());
        async move {
            loop {
                let (entries, requests) = progress.counts();
                let shown = step.lock().map(|s| s.clone()).unwrap_or_default();
                bar.set_message(shown.unwrap_or_else(|| {
                    format!("reading the directory: {entries} entries, {requests} requests")
                }));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    (Some(progress), Some(Shown { bar, step, ticker }))
}

impl Shown {
    /// Shows `what` instead of the read's counts from now on.
    pub fn step(&self, what: &str) {
        if let Ok(mut step) = self.step.lock() {
            *step = Some(what.to_owned());
        }
        self.bar.set_message(what.to_owned());
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
