//! `kaji load IMAGE.tar...`: puts image archives (an OCI layout tarball or `docker save`'s
//! format) into every node's image store, like `kind load image-archive`, so pods run them
//! with `imagePullPolicy: IfNotPresent` or `Never` and no registry. Each node's kubelet imports
//! the archive it is sent (`POST /images/load`), authenticated with the admin client
//! certificate as the apiserver is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::state::Cluster;

/// The kubelets' port.
const KUBELET_PORT: u16 = 10250;

/// `kaji load` flags.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The cluster.
    #[arg(long, default_value = "kaji")]
    pub name: String,
    /// Only these nodes (by name or index; all by default).
    #[arg(long = "nodes", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Image archives: OCI layout tarballs or docker archives.
    #[arg(required = true)]
    pub archives: Vec<PathBuf>,
}

pub fn load(args: &LoadArgs) -> Result<()> {
    let cluster = Cluster::load(&args.name)?;
    let nodes: Vec<usize> = if args.nodes.is_empty() {
        (0..cluster.nodes.len()).collect()
    } else {
        args.nodes
            .iter()
            .map(|name| crate::node::find(&cluster, name))
            .collect::<Result<_>>()?
    };
    let archives = args
        .archives
        .iter()
        .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .collect::<Result<Vec<_>>>()?;
    let admin = crate::control_plane::admin_kubeconfig(&cluster)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        for index in nodes {
            let node = &cluster.nodes[index];
            let client = kubelet_client(&admin, &node.ip).await?;
            for (path, archive) in args.archives.iter().zip(&archives) {
                let loaded = send(&client, archive.clone())
                    .await
                    .with_context(|| format!("loading {} into node {}", path.display(), node.name))?;
                for reference in loaded {
                    println!("Image: \"{reference}\" loaded into node {}", node.name);
                }
            }
        }
        Ok(())
    })
}

/// A client for the kubelet at `ip`, with the admin kubeconfig's client certificate. The
/// kubelet's serving certificate is self-signed (as upstream's without `--tls-cert-file`), so
/// it is not verified, as the apiserver doesn't by default either.
async fn kubelet_client(admin: &Path, ip: &str) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(admin)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    config.cluster_url = format!("https://{ip}:{KUBELET_PORT}").parse()?;
    config.accept_invalid_certs = true;
    config.root_cert = None;
    Ok(kube::Client::try_from(config)?)
}

/// Posts one archive; returns the references the node now holds.
async fn send(client: &kube::Client, archive: Vec<u8>) -> Result<Vec<String>> {
    let request = http::Request::post("/images/load")
        .header(http::header::CONTENT_TYPE, "application/x-tar")
        .body(archive)?;
    let text = match client.request_text(request).await {
        Ok(text) => text,
        Err(kube::Error::Api(status)) => bail!("{}", status.message),
        Err(error) => return Err(error.into()),
    };
    let answer: serde_json::Value = serde_json::from_str(&text).context("the kubelet's answer")?;
    Ok(answer["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|image| image["reference"].as_str().map(str::to_string))
        .collect())
}
