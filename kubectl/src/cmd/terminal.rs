//! The local terminal for `exec -t` and `attach -t`: raw mode for as long as a [`RawMode`] guard lives
//! (restored on drop, so also on errors and panics), its size, and a task that sends the
//! size first and again on every `SIGWINCH`, like upstream's `term.TTY.MonitorSize`.

use std::io::IsTerminal;

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use tokio::sync::mpsc;

use crate::cmd::remote::TerminalSize;

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The terminal's size, from stdout if it is a terminal, else stdin (upstream's `GetSize`).
pub fn size() -> Option<TerminalSize> {
    let from = |size: rustix::termios::Winsize| TerminalSize {
        width: size.ws_col,
        height: size.ws_row,
    };
    let size = tcgetwinsize(std::io::stdout())
        .or_else(|_| tcgetwinsize(std::io::stdin()))
        .ok()
        .map(from)?;
    (size.width > 0 && size.height > 0).then_some(size)
}

/// Stdin in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode.
    pub fn enter() -> std::io::Result<RawMode> {
        let saved = tcgetattr(std::io::stdin())?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(std::io::stdin(), OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Sizes to send on the resize channel: the current one now, then each change signalled by
/// `SIGWINCH`. The task ends when the receiver is dropped.
pub fn monitor_size() -> mpsc::Receiver<TerminalSize> {
    monitor_size_after(None)
}

/// [`monitor_size`] that sends `before` first (`attach` sends the size plus one row and
/// column, then the size, so that a program already running redraws its screen).
pub fn monitor_size_after(before: Option<TerminalSize>) -> mpsc::Receiver<TerminalSize> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Some(before) = before
            && sender.send(before).await.is_err()
        {
            return;
        }
        let mut last = size();
        if let Some(first) = last
            && sender.send(first).await.is_err()
        {
            return;
        }
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            let now = size();
            if now != last
                && let Some(now) = now
            {
                if sender.send(now).await.is_err() {
                    return;
                }
                last = Some(now);
            }
        }
    });
    receiver
}
