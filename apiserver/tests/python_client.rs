//! The official Kubernetes python client (`pip install kubernetes`) against a real etcd and a
//! real `kube-apiserver`: runs `tests/python/test_client.py` with the admin kubeconfig.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testkit::apiserver::ApiServer;
use testkit::etcd::EtcdServer;

/// The whole script's time limit.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn official_python_client_works() -> Result<()> {
    let import = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .context("running python3 (is it installed and on PATH?)")?;
    if !import.status.success() {
        bail!(
            "the python package `kubernetes` cannot be imported; install it with `pip install kubernetes`:\n{}",
            String::from_utf8_lossy(&import.stderr)
        );
    }

    let etcd = EtcdServer::start()?;
    let apiserver = ApiServer::start(Path::new(env!("CARGO_BIN_EXE_kube-apiserver")), &etcd.endpoint, &[])?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_client.py");

    let mut child = Command::new("python3")
        .arg(&script)
        .arg(apiserver.kubeconfig())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting python3 {}", script.display()))?;
    // Drain both pipes on threads so a chatty script cannot block on a full pipe.
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Our own child, by its handle.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    println!("--- test_client.py stdout ---\n{stdout}");
    println!("--- test_client.py stderr ---\n{stderr}");
    match status {
        None => bail!(
            "test_client.py did not finish within {SCRIPT_TIMEOUT:?}; apiserver log:\n{}",
            apiserver.log_tail()
        ),
        Some(status) if !status.success() => bail!(
            "test_client.py failed ({status}):\n{stdout}\n{stderr}\napiserver log:\n{}",
            apiserver.log_tail()
        ),
        Some(_) => Ok(()),
    }
}
