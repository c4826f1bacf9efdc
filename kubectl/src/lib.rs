//! kubectl: the command-line client, a drop-in for upstream kubectl's everyday commands,
//! built on `kube`'s client and the apiserver's own Table printing.

pub mod cmd;
pub mod connection;
pub mod describe;
pub mod discovery;
pub mod error;
pub mod fetch;
pub mod manifest;
pub mod printer;
pub mod request;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cmd::Context;
use crate::connection::ConnectionFlags;
use crate::error::Error;

/// kubectl controls the Kubernetes cluster manager.
#[derive(Parser, Debug)]
#[command(name = "kubectl", disable_version_flag = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub flags: ConnectionFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Display one or many resources.
    Get(cmd::get::GetArgs),
    /// Show details of a specific resource or group of resources.
    Describe(cmd::describe::DescribeArgs),
    /// Apply a configuration to a resource by file name or stdin.
    Apply(cmd::apply::ApplyArgs),
    /// Create a resource from a file or from stdin.
    Create(cmd::create::CreateCommand),
    /// Take a replication controller, service, deployment or pod and expose it as a new Kubernetes service.
    Expose(cmd::expose::ExposeArgs),
    /// Run a particular image on the cluster.
    Run(cmd::run::RunArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector.
    Delete(cmd::delete::DeleteArgs),
    /// Print the logs for a container in a pod.
    Logs(cmd::logs::LogsArgs),
    /// Execute a command in a container.
    Exec(cmd::exec::ExecArgs),
    /// Attach to a running container.
    Attach(cmd::attach::AttachArgs),
    /// Copy files and directories to and from containers.
    Cp(cmd::cp::CpArgs),
    /// Forward one or more local ports to a pod.
    PortForward(cmd::port_forward::PortForwardArgs),
    /// Set a new size for a deployment, replica set, or stateful set.
    Scale(cmd::scale::ScaleArgs),
    /// Update the labels on a resource.
    Label(cmd::label::MetaArgs),
    /// Update the annotations on a resource.
    Annotate(cmd::label::MetaArgs),
    /// Update fields of a resource using strategic merge patch, a JSON merge patch, or a JSON patch.
    Patch(cmd::patch::PatchArgs),
    /// Replace a resource by file name or stdin.
    Replace(cmd::replace::ReplaceArgs),
    /// Set specific features on objects.
    Set(cmd::set::SetCommand),
    /// Edit a resource on the server.
    Edit(cmd::edit::EditArgs),
    /// Diff the live version against a would-be applied version.
    Diff(cmd::diff::DiffArgs),
    /// Print the supported API resources on the server.
    ApiResources(cmd::info::ApiResourcesArgs),
    /// Print the supported API versions on the server, in the form of "group/version".
    ApiVersions,
    /// Display cluster information.
    ClusterInfo,
    /// Manage the rollout of a resource.
    Rollout(cmd::rollout::RolloutArgs),
    /// Experimental: Wait for a specific condition on one or many resources.
    Wait(cmd::wait::WaitArgs),
    /// Mark node as unschedulable.
    Cordon(cmd::drain::CordonArgs),
    /// Mark node as schedulable.
    Uncordon(cmd::drain::CordonArgs),
    /// Drain node in preparation for maintenance.
    Drain(cmd::drain::DrainArgs),
    /// Display resource (CPU/memory) usage.
    Top(cmd::top::TopArgs),
    /// Output shell completion code for the specified shell (bash, zsh, fish, or powershell).
    Completion(cmd::completion::CompletionArgs),
    /// Get documentation for a resource.
    Explain(cmd::explain::ExplainArgs),
    /// Inspect authorization.
    Auth(cmd::auth::AuthArgs),
    /// Modify kubeconfig files.
    Config(cmd::config::ConfigArgs),
    /// Print the client and server version information.
    Version(cmd::info::VersionArgs),
}

/// `create rolebinding|clusterrolebinding` have their own `--user` (a subject), which shadows
/// the global `--user` (the kubeconfig user) as a cobra local flag does upstream; clap cannot
/// define both, so those commands' `--user` is renamed to the hidden `--binding-user`.
fn shadow_binding_user(mut args: Vec<String>) -> Vec<String> {
    let before_dash: Vec<&str> = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .map(String::as_str)
        .collect();
    let binding = before_dash
        .windows(2)
        .any(|pair| matches!(pair, ["create", "rolebinding" | "clusterrolebinding"]));
    if !binding {
        return args;
    }
    for arg in args.iter_mut().skip(1).take_while(|a| *a != "--") {
        if arg == "--user" {
            *arg = "--binding-user".into();
        } else if let Some(value) = arg.strip_prefix("--user=") {
            *arg = format!("--binding-user={value}");
        }
    }
    args
}

/// Parses `args` (including the program name) and runs the command; returns the exit code.
pub fn main_with_args(args: Vec<String>) -> i32 {
    let args = shadow_binding_user(args);
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(error) => {
            use clap::error::ErrorKind;
            let code = match error.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
            let _ = error.print();
            return code;
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {error}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return 1;
        }
    };
    let mut ctx = Context::new(cli.flags.clone());
    match runtime.block_on(run(&mut ctx, &cli.command)) {
        Ok(()) => 0,
        Err(error) => {
            // An empty message is a failure already reported (`auth can-i` answering no, `diff`
            // finding differences).
            let text = error.render();
            if !text.is_empty() {
                ctx.err(&format!("{text}\n"));
            }
            error.exit_code()
        }
    }
}

/// Runs one parsed command.
pub async fn run(ctx: &mut Context, command: &Command) -> Result<(), Error> {
    match command {
        Command::Get(args) => cmd::get::run(ctx, args).await,
        Command::Describe(args) => cmd::describe::run(ctx, args).await,
        Command::Apply(args) => cmd::apply::run(ctx, args).await,
        Command::Create(args) => cmd::create::run(ctx, args).await,
        Command::Expose(args) => cmd::expose::run(ctx, args).await,
        Command::Run(args) => cmd::run::run(ctx, args).await,
        Command::Delete(args) => cmd::delete::run(ctx, args).await,
        Command::Logs(args) => cmd::logs::run(ctx, args).await,
        Command::Exec(args) => cmd::exec::run(ctx, args).await,
        Command::Attach(args) => cmd::attach::run(ctx, args).await,
        Command::Cp(args) => cmd::cp::run(ctx, args).await,
        Command::PortForward(args) => cmd::port_forward::run(ctx, args).await,
        Command::Scale(args) => cmd::scale::run(ctx, args).await,
        Command::Label(args) => cmd::label::label(ctx, args).await,
        Command::Annotate(args) => cmd::label::annotate(ctx, args).await,
        Command::Patch(args) => cmd::patch::run(ctx, args).await,
        Command::Replace(args) => cmd::replace::run(ctx, args).await,
        Command::Set(args) => cmd::set::run(ctx, args).await,
        Command::Edit(args) => cmd::edit::run(ctx, args).await,
        Command::Diff(args) => cmd::diff::run(ctx, args).await,
        Command::ApiResources(args) => cmd::info::api_resources(ctx, args).await,
        Command::ApiVersions => cmd::info::api_versions(ctx).await,
        Command::ClusterInfo => cmd::info::cluster_info(ctx).await,
        Command::Rollout(args) => cmd::rollout::run(ctx, args).await,
        Command::Wait(args) => cmd::wait::run(ctx, args).await,
        Command::Cordon(args) => cmd::drain::cordon(ctx, args, true).await,
        Command::Uncordon(args) => cmd::drain::cordon(ctx, args, false).await,
        Command::Drain(args) => cmd::drain::drain(ctx, args).await,
        Command::Top(args) => cmd::top::run(ctx, args).await,
        Command::Completion(args) => cmd::completion::run(ctx, args),
        Command::Explain(args) => cmd::explain::run(ctx, args).await,
        Command::Auth(args) => cmd::auth::run(ctx, args).await,
        Command::Config(args) => cmd::config::run(ctx, args),
        Command::Version(args) => cmd::info::version(ctx, args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
