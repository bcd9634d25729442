//! The man pages, shell completions and the book's CLI reference, rendered from the
//! command line's own definitions (`cli::args`): with `clap_mangen`, one page for the
//! command (`pc-autoscaler.1`) and one for each subcommand (`pc-autoscaler-plan.1`,
//! nested ones `pc-autoscaler-override-set.1`); with `clap_complete`, a completion
//! script for bash, zsh and fish; and Markdown for `docs/src/reference/cli.md`. What it
//! must not do: write files (`main.rs` and the docs test do) or say anything the
//! arguments do not.

use clap::CommandFactory as _;

use super::args::{Cli, Shell};

/// The command's name, as it is installed.
const NAME: &str = "pc-autoscaler";

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut command, NAME, &mut script)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut command, NAME, &mut script)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut command, NAME, &mut script)
        }
    }
    script
}

/// Every man page, as (file name, roff): the command's first, then each subcommand's,
/// nested ones after their parent.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut command = Cli::command();
    command.build();
    let mut pages = Vec::new();
    add_pages(&command, NAME, &mut pages);
    pages
}

fn add_pages(command: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let page = command.clone().name(name.to_owned());
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .expect("rendering into memory does not fail");
    pages.push((format!("{name}.1"), roff));
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        add_pages(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}

/// The book's CLI reference: each command and subcommand with its usage, what it does
/// and each argument, in the order `--help` shows them.
pub fn markdown() -> String {
    let mut command = Cli::command();
    command.build();
    let mut out = String::new();
    add_markdown(&command, NAME, &mut out);
    out
}

fn add_markdown(command: &clap::Command, name: &str, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "## `{name}`\n");
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let usage = command
        .clone()
        .name(name.to_owned())
        .bin_name(name.to_owned())
        .render_usage()
        .to_string();
    let _ = writeln!(
        out,
        "```text\n{}\n```\n",
        usage.trim_start_matches("Usage: ")
    );
    let arguments: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|argument| !argument.is_hide_set())
        .filter(|argument| !matches!(argument.get_id().as_str(), "help" | "version"))
        .collect();
    if !arguments.is_empty() {
        out.push_str("| argument | default | meaning |\n| --- | --- | --- |\n");
        for argument in arguments {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                argument_name(argument),
                argument_default(argument),
                argument
                    .get_long_help()
                    .or(argument.get_help())
                    .map(|help| help.to_string().replace('\n', " "))
                    .unwrap_or_default()
                    .replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        add_markdown(sub, &format!("{name} {}", sub.get_name()), out);
    }
}

/// `--flag VALUE`, `-s`, or a positional `<VALUE>`, as the reference names it.
fn argument_name(argument: &clap::Arg) -> String {
    let value = argument
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| argument.get_id().to_string().to_uppercase());
    let takes_value = argument
        .get_num_args()
        .is_some_and(|range| range.takes_values());
    match argument.get_long() {
        Some(long) if takes_value => format!("`--{long} {value}`"),
        Some(long) => format!("`--{long}`"),
        None => format!("`<{value}>`"),
    }
}

/// The default and the environment variable, when the argument has either.
fn argument_default(argument: &clap::Arg) -> String {
    let flag = matches!(argument.get_action(), clap::ArgAction::SetTrue);
    let defaults: Vec<String> = argument
        .get_default_values()
        .iter()
        .map(|value| format!("`{}`", value.to_string_lossy()))
        .filter(|_| !flag)
        .collect();
    let mut text = defaults.join(", ");
    if let Some(env) = argument.get_env() {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&format!("`${}`", env.to_string_lossy()));
    }
    if text.is_empty() { "-".into() } else { text }
}
