//! The man pages and shell completions, rendered from the command line's own
//! definitions (`cli::args`) with `clap_mangen` and `clap_complete`: one page for the
//! command (`pc-autoscaler.1`) and one for each subcommand (`pc-autoscaler-plan.1`,
//! nested ones `pc-autoscaler-override-set.1`), and a completion script for bash, zsh
//! and fish. What it must not do: write files (`main.rs` does) or say anything the
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
