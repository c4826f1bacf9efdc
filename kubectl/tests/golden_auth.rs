//! Golden tests of `kubectl auth can-i` and `auth whoami`: ours and upstream 1.37 against the
//! apiserver's self-review resources (no authorization is enforced, so everything is allowed,
//! as with upstream's AlwaysAllow authorizer).

mod common;

use anyhow::Result;
use common::Clients;

#[test]
fn auth_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-auth")?;
    let yes = clients.same(&["auth", "can-i", "get", "pods"])?;
    assert_eq!((yes.code, yes.stdout.as_str()), (0, "yes\n"));
    for args in [
        &["auth", "can-i", "create", "deployments.apps", "-A"][..],
        &["auth", "can-i", "delete", "deploy/web"],
        &["auth", "can-i", "get", "pods", "--subresource=log", "-q"],
        &["auth", "can-i", "get", "/logs"],
        &["auth", "can-i", "frob", "/logs"],
        &["auth", "can-i", "frob", "things"],
        &["auth", "can-i", "get", "nonsense.apps"],
        &["auth", "can-i", "--list"],
        &["auth", "can-i", "--list", "--no-headers"],
        &["auth", "can-i", "get", "pods", "extra"],
        &["auth", "can-i"],
        &["auth", "whoami"],
        &["auth", "whoami", "-o", "json"],
        &["auth", "whoami", "-o", "yaml"],
    ] {
        clients.same(args)?;
    }
    Ok(())
}
