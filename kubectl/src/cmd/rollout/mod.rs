//! `kubectl rollout`: the status, history and undo of Deployments, DaemonSets and
//! StatefulSets, and `restart`, `pause`, `resume`, as upstream's `pkg/cmd/rollout` with the
//! helpers of `pkg/polymorphichelpers`.

mod history;
mod patch;
mod status;
mod undo;

pub use history::HistoryArgs;
pub use patch::{PatchArgs, RestartArgs};
pub use status::StatusArgs;
pub use undo::UndoArgs;

use crate::cmd::Context;
use crate::cmd::objects::{self, Failure, Found, Selection};
use crate::error::Error;

/// Manage the rollout of one or many resources.
#[derive(clap::Args, Debug, Clone)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum RolloutCommand {
    /// Show the status of the rollout.
    Status(StatusArgs),
    /// View rollout history.
    History(HistoryArgs),
    /// Undo a previous rollout.
    Undo(UndoArgs),
    /// Restart a resource.
    Restart(RestartArgs),
    /// Mark the provided resource as paused.
    Pause(PatchArgs),
    /// Resume a paused resource.
    Resume(PatchArgs),
}

/// Runs `kubectl rollout ...`.
pub async fn run(ctx: &mut Context, args: &RolloutArgs) -> Result<(), Error> {
    match &args.command {
        RolloutCommand::Status(args) => status::run(ctx, args).await,
        RolloutCommand::History(args) => history::run(ctx, args).await,
        RolloutCommand::Undo(args) => undo::run(ctx, args).await,
        RolloutCommand::Restart(args) => patch::run(ctx, &args.common, patch::Action::Restart).await,
        RolloutCommand::Pause(args) => patch::run(ctx, args, patch::Action::Pause).await,
        RolloutCommand::Resume(args) => patch::run(ctx, args, patch::Action::Resume).await,
    }
}

/// The `TYPE NAME | TYPE/NAME` and `-f` arguments every rollout command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ObjectArgs {
    /// (TYPE NAME | TYPE/NAME)
    pub args: Vec<String>,
    /// Filename, directory, or URL to files identifying the resource to get from a server.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

impl ObjectArgs {
    /// The selection, with `-l` if the command has it; an error when nothing was named.
    fn selection<'a>(&'a self, selector: Option<&'a str>) -> Result<Selection<'a>, Error> {
        let selection = Selection {
            args: &self.args,
            filenames: &self.filenames,
            recursive: self.recursive,
            selector,
            field_selector: None,
            all_namespaces: false,
        };
        if selection.is_empty() {
            return Err(Error::Message("required resource not specified".into()));
        }
        Ok(selection)
    }
}

/// The workload kinds rollout commands know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl Workload {
    fn of(group: &str, kind: &str) -> Option<Self> {
        match (group, kind) {
            ("apps" | "extensions", "Deployment") => Some(Self::Deployment),
            ("apps" | "extensions", "DaemonSet") => Some(Self::DaemonSet),
            ("apps", "StatefulSet") => Some(Self::StatefulSet),
            _ => None,
        }
    }
}

/// Whether upstream's `apps.GroupKindElement` has a visitor method for the kind (the kinds
/// it knows but has no history viewer or rollbacker for answer differently than unknown ones).
fn has_visitor(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Pod" | "ReplicationController") | ("apps" | "extensions", "ReplicaSet") | ("batch", "Job" | "CronJob")
    )
}

/// The error of a kind without a history viewer (`what`: `history`) or rollbacker.
fn unsupported(resource: &crate::discovery::Resource, retrieving: &str, implemented: &str) -> Error {
    let kind = crate::cmd::objects::group_kind(resource);
    if has_visitor(&resource.group, &resource.kind) {
        Error::Message(format!("no {implemented} has been implemented for \"{kind}\""))
    } else {
        Error::Message(format!(
            "error retrieving {retrieving} for \"{kind}\", no visitor method exists for {{{} {}}}",
            resource.group, resource.kind
        ))
    }
}

/// Runs `each` on every object `selection` names (with its workload kind), printing the
/// warnings it leaves in its last argument on stderr, then what it returns; failures, including the objects that could not be fetched, are reported at the
/// end in argument order, as upstream's `Visit` with `ContinueOnError()` does.
async fn visit(
    ctx: &mut Context,
    selection: Selection<'_>,
    implemented: (&str, &str),
    mut each: impl AsyncFnMut(&kube::Client, &Found, Workload, &mut String) -> Result<String, Error>,
) -> Result<(), Error> {
    let client = ctx.client().await?;
    let mut failures = Vec::new();
    for found in objects::resolve_continue(ctx, selection).await? {
        let mut warnings = String::new();
        let result = match &found {
            Err(_) => found.map(|_| String::new()),
            Ok(found) => match Workload::of(&found.resource.group, &found.resource.kind) {
                Some(workload) => each(&client, found, workload, &mut warnings).await,
                None => Err(unsupported(&found.resource, implemented.0, implemented.1)),
            },
        };
        ctx.err(&warnings);
        match result {
            Ok(text) => ctx.out(&text),
            Err(error) => failures.push(Failure::One(error)),
        }
    }
    objects::finish(failures)
}
