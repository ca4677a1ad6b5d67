//! Progress bars for long operations (export, import, audit, rebuild): drawn on stderr only when
//! stderr is a terminal and the output is not `--json`; otherwise every call does nothing.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress bars are drawn: stderr is a terminal and the output is for people.
pub(crate) fn enabled(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress bar that may be switched off.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar labelled `label`; with a `total` it shows a bar and an estimate, without it a
    /// spinner and a count. Nothing is drawn unless `enabled`.
    pub(crate) fn new(enabled: bool, label: &str, unit: &str, total: Option<u64>) -> Self {
        if !enabled {
            return Self { bar: None };
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                format!("{{msg:>8}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, {{eta}})"),
            ),
            None => (
                ProgressBar::new_spinner(),
                format!("{{spinner}} {{msg:>8}} {{human_pos}} {unit} ({{per_sec}})"),
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar: Some(bar) }
    }

    /// Sets the position.
    pub(crate) fn set(&self, position: u64) {
        if let Some(bar) = &self.bar {
            if bar.length().is_some_and(|len| position > len) {
                bar.set_length(position);
            }
            bar.set_position(position);
        }
    }

    /// Changes the label (a new phase).
    pub(crate) fn phase(&self, label: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(label.to_owned());
        }
    }

    /// Runs `f` with the bar hidden, so lines printed meanwhile are not garbled.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar from the terminal.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
