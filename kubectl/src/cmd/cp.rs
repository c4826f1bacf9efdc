//! `kubectl cp`: files and directories to and from containers as a tar stream through `exec`
//! (`tar -xmf - -C DIR` in the container for uploads, `tar cf - PATH` for downloads), with
//! upstream's path rules: `[[namespace/]pod:]path`, an existing remote directory receives the
//! source by its base name, and downloaded entries are kept inside the destination.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use tokio::io::DuplexStream;
use tokio_util::io::SyncIoBridge;

use crate::cmd::Context;
use crate::cmd::exec::{ExecRequest, exec, get_pod};
use crate::cmd::remote::{self, Streams};
use crate::error::Error;

/// Copy files and directories to and from containers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CpArgs {
    /// <file-spec-src> <file-spec-dest>
    pub args: Vec<String>,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation
    /// for selecting the container to be attached or the first container in the pod will be chosen.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The copied file/directory's ownership and permissions will not be preserved in the container.
    #[arg(long)]
    pub no_preserve: bool,
    /// Set number of retries to complete a copy operation from a container (accepted; a
    /// broken download is not resumed).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub retries: i64,
}

/// One side of a copy: `[[namespace/]pod:]path`.
#[derive(Debug, PartialEq, Eq)]
struct FileSpec {
    namespace: Option<String>,
    pod: Option<String>,
    file: String,
}

const PIPE: usize = 256 * 1024;

fn parse_spec(arg: &str) -> Result<FileSpec, Error> {
    let bad = || Error::Message("filespec must match the canonical format: [[namespace/]pod:]file/path".into());
    let Some((pod, file)) = arg.split_once(':') else {
        return Ok(FileSpec {
            namespace: None,
            pod: None,
            file: strip_trailing_slash(arg).to_string(),
        });
    };
    if pod.is_empty() {
        return Err(bad());
    }
    let (namespace, pod) = match pod.split('/').collect::<Vec<_>>().as_slice() {
        [pod] => (None, pod.to_string()),
        [namespace, pod] => (Some(namespace.to_string()), pod.to_string()),
        _ => return Err(bad()),
    };
    Ok(FileSpec {
        namespace,
        pod: Some(pod),
        file: strip_trailing_slash(file).to_string(),
    })
}

fn strip_trailing_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// Go's `path.Clean` for remote (always `/`-separated) paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Dir` and `path.Base` of a cleaned path.
fn split_dir_base(path: &str) -> (String, String) {
    match path.rsplit_once('/') {
        Some(("", base)) => ("/".to_string(), base.to_string()),
        Some((dir, base)) => (clean(dir), base.to_string()),
        None => (".".to_string(), path.to_string()),
    }
}

/// Upstream's `stripPathShortcuts`: leading `../` removed, `.`/`..` emptied, no leading `/`.
fn strip_path_shortcuts(path: &str) -> String {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("../") {
        path = rest;
    }
    if path == "." || path == ".." {
        return String::new();
    }
    path.strip_prefix('/').unwrap_or(path).to_string()
}

/// Runs `kubectl cp`.
pub async fn run(ctx: &mut Context, args: &CpArgs) -> Result<(), Error> {
    let [src, dest] = args.args.as_slice() else {
        return Err(Error::Message("source and destination are required".into()));
    };
    let (src, dest) = (parse_spec(src)?, parse_spec(dest)?);
    if src.pod.is_some() && dest.pod.is_some() {
        return Err(Error::Message(
            "one of src or dest must be a local file specification".into(),
        ));
    }
    if src.file.is_empty() || dest.file.is_empty() {
        return Err(Error::Message("filepath can not be empty".into()));
    }
    if src.pod.is_some() {
        return copy_from_pod(ctx, args, &src, &dest.file).await;
    }
    if dest.pod.is_some() {
        return copy_to_pod(ctx, args, &src.file, &dest).await;
    }
    Err(Error::Message(
        "one of src or dest must be a remote file specification".into(),
    ))
}

/// The pod and container a remote spec names (the container defaulted like `exec`).
async fn target(ctx: &mut Context, args: &CpArgs, spec: &FileSpec, quiet: bool) -> Result<(String, String), Error> {
    let namespace = match &spec.namespace {
        Some(namespace) => namespace.clone(),
        None => ctx.namespace().await?,
    };
    let client = ctx.client().await?;
    let pod = get_pod(&client, &namespace, spec.pod.as_deref().unwrap_or_default()).await?;
    let container = remote::find_or_default_container(&pod, args.container.as_deref(), quiet, &mut |s| ctx.err(s))?;
    Ok((namespace, container))
}

async fn copy_to_pod(ctx: &mut Context, args: &CpArgs, src: &str, dest: &FileSpec) -> Result<(), Error> {
    if std::fs::symlink_metadata(src).is_err() {
        return Err(Error::Message(format!("{src} doesn't exist in local filesystem")));
    }
    let client = ctx.client().await?;
    let pod = dest.pod.as_deref().unwrap_or_default();
    // Upstream first asks the container whether the destination is a directory (its
    // messages go nowhere); if so, the source keeps its name inside it.
    let (namespace, container) = target(ctx, args, dest, true).await?;
    let probe = ["test".to_string(), "-d".to_string(), dest.file.clone()];
    let is_dir = exec(
        &client,
        &ExecRequest {
            namespace: &namespace,
            pod,
            container: &container,
            command: &probe,
            tty: false,
        },
        Streams {
            stdin: None,
            stdout: Some(Box::new(tokio::io::sink())),
            stderr: Some(Box::new(tokio::io::sink())),
            resize: None,
        },
    )
    .await
    .is_ok();
    let src_path = PathBuf::from(src);
    let mut dest_file = clean(&dest.file);
    if is_dir {
        let base = src_path
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        dest_file = clean(&format!("{dest_file}/{base}"));
    }
    let (dest_dir, dest_base) = split_dir_base(&dest_file);
    let (_, container) = target(ctx, args, dest, false).await?;
    let words: &[&str] = if args.no_preserve {
        &["tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-"]
    } else {
        &["tar", "-xmf", "-"]
    };
    let mut command: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if !dest_dir.is_empty() {
        command.extend(["-C".to_string(), dest_dir]);
    }
    let (pipe_in, pipe_out) = tokio::io::duplex(PIPE);
    let writer = SyncIoBridge::new(pipe_in);
    let tar_thread = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        append(&mut builder, &src_path, &dest_base)?;
        builder.into_inner()?.shutdown()
    });
    let session = exec(
        &client,
        &ExecRequest {
            namespace: &namespace,
            pod,
            container: &container,
            command: &command,
            tty: false,
        },
        Streams {
            stdin: Some(Box::new(pipe_out)),
            stdout: Some(Box::new(tokio::io::stdout())),
            stderr: Some(Box::new(tokio::io::stderr())),
            resize: None,
        },
    )
    .await;
    let made = tar_thread.await.map_err(|e| Error::Message(e.to_string()))?;
    session?;
    made.map_err(Error::from)
}

/// Adds `path` to the archive as `name` (upstream's `recursiveTar`): directories by their
/// entries (an empty one as itself), symlinks as links, anything else with its content.
fn append<W: Write>(builder: &mut tar::Builder<W>, path: &Path, name: &str) -> std::io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&metadata);
    if metadata.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        if entries.is_empty() {
            return builder.append_data(&mut header, name, std::io::empty());
        }
        for entry in entries {
            let child = entry.file_name().to_string_lossy().into_owned();
            append(builder, &entry.path(), &format!("{name}/{child}"))?;
        }
        Ok(())
    } else if metadata.file_type().is_symlink() {
        builder.append_link(&mut header, name, std::fs::read_link(path)?)
    } else {
        builder.append_data(&mut header, name, std::fs::File::open(path)?)
    }
}

async fn copy_from_pod(ctx: &mut Context, args: &CpArgs, src: &FileSpec, dest: &str) -> Result<(), Error> {
    let client = ctx.client().await?;
    let (namespace, container) = target(ctx, args, src, false).await?;
    let pod = src.pod.clone().unwrap_or_default();
    let command = ["tar".to_string(), "cf".to_string(), "-".to_string(), src.file.clone()];
    let prefix = strip_path_shortcuts(&clean(src.file.trim_start_matches(['/', '\\'])));
    let (pipe_in, pipe_out) = tokio::io::duplex(PIPE);
    let reader = SyncIoBridge::new(pipe_out);
    let untar = Untar {
        prefix,
        dest: PathBuf::from(dest),
        // Upstream names the namespace as given in the spec (empty when defaulted).
        hint: format!(
            "kubectl exec -n {:?} {pod:?} -- tar cf - {:?} | tar xf -",
            src.namespace.as_deref().unwrap_or_default(),
            src.file
        ),
    };
    let untar_thread = tokio::task::spawn_blocking(move || untar.run(reader));
    // Upstream hands the remote tar's stderr (e.g. "removing leading '/'") to stdout.
    let session = exec(
        &client,
        &ExecRequest {
            namespace: &namespace,
            pod: &pod,
            container: &container,
            command: &command,
            tty: false,
        },
        Streams {
            stdin: None,
            stdout: Some(Box::new(pipe_in) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>),
            stderr: Some(Box::new(tokio::io::stdout())),
            resize: None,
        },
    )
    .await;
    untar_thread.await.map_err(|e| Error::Message(e.to_string()))??;
    session
}

/// Extracts a downloaded archive under `dest`, as upstream's `untarAll`.
struct Untar {
    /// The remote path without its leading `/`: every entry must start with it.
    prefix: String,
    dest: PathBuf,
    /// The command the first skipped symlink's warning suggests.
    hint: String,
}

impl Untar {
    /// Extracts everything, printing warnings on stderr as they come.
    fn run(self, mut reader: SyncIoBridge<DuplexStream>) -> Result<(), Error> {
        let result = self.extract(&mut reader, &mut |warning| {
            let _ = std::io::stderr().write_all(warning.as_bytes());
        });
        // Keep reading so the session reaches the command's status.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        result
    }

    fn extract(&self, reader: &mut impl Read, warn: &mut dyn FnMut(&str)) -> Result<(), Error> {
        let mut archive = tar::Archive::new(reader);
        let mut warned_symlink = false;
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(rest) = name.strip_prefix(&self.prefix) else {
                return Err(Error::Message("tar contents corrupted".into()));
            };
            let target = join_inside(&self.dest, rest);
            let Some(target) = target else {
                let shown = self.dest.join(rest.trim_start_matches('/'));
                warn(&format!(
                    "warning: file {:?} is outside target destination, skipping\n",
                    shown.display().to_string()
                ));
                continue;
            };
            if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                std::fs::create_dir_all(&target)?;
                continue;
            }
            if kind.is_symlink() {
                let link = entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                let shown = target.display().to_string();
                if warned_symlink {
                    warn(&format!("warning: skipping symlink: {shown:?} -> {link:?}\n"));
                } else {
                    warn(&format!(
                        "warning: skipping symlink: {shown:?} -> {link:?} (consider using \"{}\")\n",
                        self.hint
                    ));
                    warned_symlink = true;
                }
                continue;
            }
            let mut file = std::fs::File::create(&target)?;
            std::io::copy(&mut entry, &mut file)?;
        }
        Ok(())
    }
}

/// `dest` joined with an entry's remainder, cleaned like Go's `filepath.Join`; `None` when
/// the result would leave `dest` (upstream's `isRelative`).
fn join_inside(dest: &Path, rest: &str) -> Option<PathBuf> {
    let mut out = dest.to_path_buf();
    let mut depth = 0usize;
    for part in Path::new(strip_trailing_slash(rest)).components() {
        match part {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            Component::ParentDir => {
                depth = depth.checked_sub(1)?;
                out.pop();
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs_parse_like_upstream() {
        let spec = parse_spec("ns/pod:/tmp/x/").unwrap();
        assert_eq!(
            spec,
            FileSpec {
                namespace: Some("ns".into()),
                pod: Some("pod".into()),
                file: "/tmp/x".into()
            }
        );
        assert_eq!(parse_spec("local/dir/").unwrap().file, "local/dir");
        assert_eq!(parse_spec("pod:").unwrap().file, "");
        assert!(parse_spec(":x").is_err());
        assert!(parse_spec("a/b/c:x").is_err());
    }

    #[test]
    fn remote_paths_clean_like_go() {
        assert_eq!(clean("/tmp//d/../e/"), "/tmp/e");
        assert_eq!(clean("../../x"), "../../x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(split_dir_base("/tmp/x"), ("/tmp".into(), "x".into()));
        assert_eq!(split_dir_base("/x"), ("/".into(), "x".into()));
        assert_eq!(split_dir_base("x"), (".".into(), "x".into()));
        assert_eq!(strip_path_shortcuts("../../tmp/d"), "tmp/d");
        assert_eq!(strip_path_shortcuts(".."), "");
    }

    #[test]
    fn entries_stay_inside_the_destination() {
        assert_eq!(join_inside(Path::new("out"), "/a/b"), Some(PathBuf::from("out/a/b")));
        assert_eq!(join_inside(Path::new("out"), ""), Some(PathBuf::from("out")));
        assert_eq!(join_inside(Path::new("out"), "/a/../b"), Some(PathBuf::from("out/b")));
        assert_eq!(join_inside(Path::new("out"), "/../evil"), None);
    }
}
