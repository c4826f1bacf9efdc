//! `kubectl completion bash|zsh|fish|powershell`: the shell completion script for this binary
//! (commands, subcommands and flags, generated from its command-line definition by
//! `clap_complete`), with upstream's argument errors.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cmd::Context;
use crate::error::Error;

/// Output shell completion code for the specified shell (bash, zsh, fish, or powershell).
#[derive(clap::Args, Debug, Clone)]
pub struct CompletionArgs {
    /// SHELL
    pub shells: Vec<String>,
}

/// Runs `kubectl completion SHELL`.
pub fn run(ctx: &mut Context, args: &CompletionArgs) -> Result<(), Error> {
    let usage =
        |message: String| Error::Message(format!("{message}\nSee 'kubectl completion -h' for help and examples"));
    let shell = match args.shells.as_slice() {
        [] => return Err(usage("Shell not specified.".into())),
        [shell] => shell,
        _ => return Err(usage("Too many arguments. Expected only the shell type.".into())),
    };
    let shell = match shell.as_str() {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        "powershell" => Shell::PowerShell,
        other => {
            return Err(usage(format!(
                "Unsupported shell type {}.",
                crate::cmd::objects::go_quote(other)
            )));
        }
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), "kubectl", &mut script);
    ctx.out(&String::from_utf8_lossy(&script));
    Ok(())
}
