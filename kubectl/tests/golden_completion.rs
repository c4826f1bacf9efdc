//! `kubectl completion` and `kubectl top`: upstream's argument errors and messages (our
//! cluster serves no Metrics API), and a bash completion script that really completes our
//! binary's commands and flags.

mod common;

use std::process::Command;

use anyhow::{Result, ensure};
use common::Clients;

#[test]
fn completion_and_top_errors_match_upstream() -> Result<()> {
    let clients = Clients::new("golden-completion")?;
    for args in [
        &["completion"][..],
        &["completion", "tcsh"],
        &["completion", "bash", "zsh"],
        &["top", "node"],
        &["top", "nodes", "-l", "a=b", "--sort-by=cpu"],
        &["top", "pod", "-A", "--containers"],
        &["top", "po", "x"],
    ] {
        clients.same(args)?;
    }
    Ok(())
}

#[test]
fn the_bash_script_completes_commands_and_flags() -> Result<()> {
    let clients = Clients::new("golden-bash")?;
    for shell in ["zsh", "fish", "powershell"] {
        let script = clients.ours(&["completion", shell])?.ok()?;
        ensure!(script.stdout.contains("kubectl"), "{shell} script names the binary");
    }
    let script = clients.ours(&["completion", "bash"])?.ok()?.stdout;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubectl.bash");
    std::fs::write(&path, script)?;
    let complete = |words: &str, current: usize| -> Result<String> {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={current}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _kubectl kubectl \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        );
        let output = Command::new("bash").arg("-c").arg(program).output()?;
        ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    assert_eq!(complete("kubectl rollo", 1)?, "rollout");
    let rollout = complete("kubectl rollout ''", 2)?;
    for sub in ["status", "history", "undo", "restart", "pause", "resume"] {
        assert!(rollout.split(' ').any(|w| w == sub), "{sub} in {rollout}");
    }
    let flags = complete("kubectl wait --fo", 2)?;
    assert_eq!(flags, "--for");
    Ok(())
}
