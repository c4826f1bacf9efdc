//! Manifests from `-f http(s)://...`: one GET through `reqwest` (rustls with the platform's
//! roots, ring as the crypto provider), retried on server errors as upstream retries, with
//! upstream's messages. The request runs on a thread of its own: the caller is synchronous but
//! may be inside the command's async runtime, where reqwest's blocking client can't run.

use std::time::Duration;

use crate::error::Error;

/// How many times a URL is tried when the server answers 5xx (upstream's retries).
const ATTEMPTS: usize = 3;

/// The body behind `url`.
pub fn get(url: &str) -> Result<String, Error> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Usage(format!("unsupported URL {url}")));
    }
    let owned = url.to_string();
    std::thread::spawn(move || fetch(&owned))
        .join()
        .map_err(|_| Error::Message(format!("Get \"{url}\": the request thread panicked")))?
}

fn fetch(url: &str) -> Result<String, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .user_agent("kubectl")
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Message(format!("Get \"{url}\": {e}")))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.get(url).send().map_err(|e| request_error(url, &e))?;
        let status = response.status();
        if status.is_success() {
            return response
                .text()
                .map_err(|e| Error::Message(format!("Get \"{url}\": {e}")));
        }
        if status.is_server_error() && attempt < ATTEMPTS {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        let code = status.as_u16();
        let reason = status.canonical_reason().unwrap_or_default();
        return Err(Error::Message(format!(
            "unable to read URL \"{url}\", server reported {code} {reason}, status code={code}"
        )));
    }
}

/// Upstream's wording for a refused connection; Go's `Get "URL": ...` for the rest.
fn request_error(url: &str, error: &reqwest::Error) -> Error {
    let refused = std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    if refused && let Some(url) = error.url() {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        return Error::Exit {
            code: 1,
            message: format!(
                "The connection to the server {host}:{port} was refused - did you specify the right host or port?"
            ),
        };
    }
    let mut text = error.to_string();
    if let Some(source) = std::error::Error::source(error) {
        text = format!("{text}: {source}");
    }
    Error::Message(format!("Get \"{url}\": {text}"))
}
