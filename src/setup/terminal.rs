//! The wizard on a terminal, with dialoguer. Prompts go to stderr; stdout stays free.

use dialoguer::{Confirm, Input, Password, Select};

use super::{Prompter, Reply};
use crate::error::{Error, Result};

pub(crate) struct TerminalPrompter;

const BACK: &str = "<";

fn failed(e: dialoguer::Error) -> Error {
    Error::config(format!("cannot read the answer from the terminal: {e}"))
}

impl Prompter for TerminalPrompter {
    fn say(&mut self, text: &str) {
        eprintln!("{text}");
    }

    fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<Reply<String>> {
        let mut input = Input::<String>::new().with_prompt(prompt).allow_empty(true);
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        let v = input.interact_text().map_err(failed)?;
        Ok(if v.trim() == BACK { Reply::Back } else { Reply::Value(v) })
    }

    fn secret(&mut self, prompt: &str) -> Result<Reply<String>> {
        let v = Password::new().with_prompt(prompt).allow_empty_password(true).interact().map_err(failed)?;
        Ok(if v.trim() == BACK { Reply::Back } else { Reply::Value(v) })
    }

    fn select(&mut self, prompt: &str, items: &[String], default: usize) -> Result<Reply<usize>> {
        let mut all: Vec<String> = items.to_vec();
        all.push("← Back".to_string());
        let i = Select::new().with_prompt(prompt).items(&all).default(default).interact().map_err(failed)?;
        Ok(if i == items.len() { Reply::Back } else { Reply::Value(i) })
    }

    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool> {
        Confirm::new().with_prompt(prompt).default(default).interact().map_err(failed)
    }
}

/// For `--non-interactive`: says everything on stdout, asks nothing.
pub(crate) struct PrintPrompter;

impl Prompter for PrintPrompter {
    fn say(&mut self, text: &str) {
        println!("{text}");
    }

    fn input(&mut self, prompt: &str, _default: Option<&str>) -> Result<Reply<String>> {
        Err(Error::config(format!("`{prompt}` needs an answer, and --non-interactive asks nothing")))
    }

    fn secret(&mut self, prompt: &str) -> Result<Reply<String>> {
        self.input(prompt, None)
    }

    fn select(&mut self, prompt: &str, _items: &[String], _default: usize) -> Result<Reply<usize>> {
        Err(Error::config(format!("`{prompt}` needs an answer, and --non-interactive asks nothing")))
    }

    fn confirm(&mut self, _prompt: &str, default: bool) -> Result<bool> {
        Ok(default)
    }
}
