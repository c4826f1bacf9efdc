//! The generators of RoleBindings and ClusterRoleBindings, building the objects as upstream's
//! `create_rolebinding.go` and `create_clusterrolebinding.go` do: a role reference and one
//! subject per `--user`, `--group` and `--serviceaccount NAMESPACE:NAME`.

use serde_json::{Value, json};

use super::{CommonFlags, finish, one_name, prepare};
use crate::cmd::Context;
use crate::error::Error;

/// `create rolebinding NAME --clusterrole=NAME|--role=NAME [--user=...] [--group=...]
/// [--serviceaccount=NAMESPACE:NAME]`.
#[derive(clap::Args, Debug, Clone)]
pub struct RoleBindingArgs {
    pub names: Vec<String>,
    /// ClusterRole this binding should reference.
    #[arg(long, default_value = "")]
    pub clusterrole: String,
    /// Role this RoleBinding should reference.
    #[arg(long, default_value = "")]
    pub role: String,
    /// Usernames to bind to the role (`--user` on the command line: see `shadow_binding_user`).
    #[arg(long = "binding-user", hide = true)]
    pub users: Vec<String>,
    /// Groups to bind to the role.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Service accounts to bind to the role, in the format <namespace>:<name>.
    #[arg(long = "serviceaccount")]
    pub service_accounts: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// The subjects, in upstream's order: users, groups, service accounts.
fn subjects(args: &RoleBindingArgs) -> Result<Vec<Value>, Error> {
    let mut subjects = Vec::new();
    for user in &args.users {
        subjects.push(json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}));
    }
    for group in &args.groups {
        subjects.push(json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}));
    }
    for account in &args.service_accounts {
        match account.split(':').collect::<Vec<_>>().as_slice() {
            [namespace, name] if !namespace.is_empty() && !name.is_empty() => {
                subjects.push(json!({"kind": "ServiceAccount", "name": name, "namespace": namespace}));
            }
            _ => return Err(Error::Message("serviceaccount must be <namespace>:<name>".into())),
        }
    }
    Ok(subjects)
}

/// The binding object: metadata, then subjects (when there are any), then the role reference.
fn binding(kind: &str, metadata: serde_json::Map<String, Value>, subjects: Vec<Value>, role: (&str, &str)) -> Value {
    let mut object = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata});
    if !subjects.is_empty() {
        object["subjects"] = Value::Array(subjects);
    }
    object["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1});
    object
}

/// Runs `create rolebinding`.
pub async fn rolebinding(ctx: &mut Context, args: &RoleBindingArgs) -> Result<(), Error> {
    let name = one_name(&args.names, "rolebinding")?;
    let prepared = prepare(ctx, &args.common).await?;
    let role = match (args.role.as_str(), args.clusterrole.as_str()) {
        (role, "") if !role.is_empty() => ("Role", role),
        ("", cluster_role) if !cluster_role.is_empty() => ("ClusterRole", cluster_role),
        _ => {
            return Err(Error::Message(
                "exactly one of clusterrole or role must be specified".into(),
            ));
        }
    };
    let subjects = subjects(args)?;
    let object = binding("RoleBinding", prepared.metadata(&name, true), subjects, role);
    finish(
        ctx,
        prepared,
        &args.common,
        object,
        Some("failed to create rolebinding: "),
    )
    .await
}

/// Runs `create clusterrolebinding` (`--role` is not one of its flags upstream).
pub async fn clusterrolebinding(ctx: &mut Context, args: &RoleBindingArgs) -> Result<(), Error> {
    if !args.role.is_empty() {
        return Err(Error::Usage("unknown flag: --role".into()));
    }
    if args.clusterrole.is_empty() {
        return Err(Error::Usage("required flag(s) \"clusterrole\" not set".into()));
    }
    let name = one_name(&args.names, "clusterrolebinding")?;
    let prepared = prepare(ctx, &args.common).await?;
    let subjects = subjects(args)?;
    let object = binding(
        "ClusterRoleBinding",
        prepared.metadata(&name, false),
        subjects,
        ("ClusterRole", &args.clusterrole),
    );
    finish(
        ctx,
        prepared,
        &args.common,
        object,
        Some("failed to create clusterrolebinding: "),
    )
    .await
}
