//! How the wizard asks: a [`Prompter`] (a terminal, or scripted answers in tests), and
//! the questions' common shapes.

use crate::config::Secret;
use crate::error::Result;

/// An answer, or the wish to go back one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// The answer.
    Value(T),
    /// Go back one step.
    Back,
}

/// How the wizard asks.
pub trait Prompter {
    /// Shows a line of information.
    fn say(&mut self, text: &str);
    /// A line of text; `<` means back.
    fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<Reply<String>>;
    /// A secret (not echoed); `<` means back.
    fn secret(&mut self, prompt: &str) -> Result<Reply<String>>;
    /// One of `items`; the prompter adds the way back.
    fn select(&mut self, prompt: &str, items: &[String], default: usize) -> Result<Reply<usize>>;
    /// Yes or no.
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool>;
}

/// Asks until the value is given, or back.
pub(super) fn ask(p: &mut dyn Prompter, prompt: &str, default: &str) -> Result<Reply<String>> {
    let default = (!default.is_empty()).then_some(default);
    loop {
        match p.input(prompt, default)? {
            Reply::Value(v) if v.trim().is_empty() => p.say("A value is needed here."),
            Reply::Value(v) => return Ok(Reply::Value(v.trim().to_string())),
            Reply::Back => return Ok(Reply::Back),
        }
    }
}

/// The value of an answer, or back out of the question that asked.
macro_rules! or_back {
    ($e:expr) => {
        match $e {
            Reply::Value(v) => v,
            Reply::Back => return Ok(Reply::Back),
        }
    };
}

/// After a failed check: change the answers, keep them anyway, or go back.
pub(super) fn after_failure(p: &mut dyn Prompter) -> Result<Reply<bool>> {
    let items = vec!["Change the answers".to_string(), "Keep them anyway (not recommended)".to_string()];
    Ok(match p.select("What now?", &items, 0)? {
        Reply::Value(0) => Reply::Value(false),
        Reply::Value(_) => Reply::Value(true),
        Reply::Back => Reply::Back,
    })
}

/// The prompt for a secret: Enter keeps the current one only where there is one.
pub(super) fn secret_prompt(label: &str, current: &Secret) -> String {
    if current.expose().is_empty() {
        format!("{label} (hidden)")
    } else {
        format!("{label} (hidden; Enter keeps the current one)")
    }
}

pub(super) use or_back;
