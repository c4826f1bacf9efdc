//! Manifests from `-f http(s)://...`: one HTTP/1.1 GET (TLS through rustls with the
//! system's roots), retried on server errors as upstream retries, with upstream's messages.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// How many times a URL is tried when the server answers 5xx (upstream's retries).
const ATTEMPTS: usize = 3;

/// The body behind `url`.
pub fn get(url: &str) -> Result<String, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (status, reason, body) = get_once(url)?;
        if (200..300).contains(&status) {
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        if status >= 500 && attempt < ATTEMPTS {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        return Err(Error::Message(format!(
            "unable to read URL \"{url}\", server reported {status} {reason}, status code={status}"
        )));
    }
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Target, Error> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(Error::Usage(format!("unsupported URL {url}")));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            let port = port
                .parse()
                .map_err(|_| Error::Message(format!("parse \"{url}\": invalid port \":{port}\" after host")))?;
            (host, port)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    Ok(Target {
        tls,
        host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        path: path.to_string(),
    })
}

/// One request: the status code, reason phrase and (de-chunked) body.
fn get_once(url: &str) -> Result<(u16, String, Vec<u8>), Error> {
    let target = parse(url)?;
    let stream = TcpStream::connect((target.host.as_str(), target.port)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            Error::Exit {
                code: 1,
                message: format!(
                    "The connection to the server {}:{} was refused - did you specify the right host or port?",
                    target.host, target.port
                ),
            }
        } else {
            Error::Message(format!("Get \"{url}\": {}", crate::cmd::select::os_error(&e)))
        }
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kubectl\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    let mut response = Vec::new();
    if target.tls {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Message(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| Error::Message(format!("Get \"{url}\": {e}")))?;
        let connection = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| Error::Message(format!("Get \"{url}\": {e}")))?;
        let mut tls = rustls::StreamOwned::new(connection, stream);
        tls.write_all(request.as_bytes())?;
        read_to_end(&mut tls, &mut response, url)?;
    } else {
        let mut stream = stream;
        stream.write_all(request.as_bytes())?;
        read_to_end(&mut stream, &mut response, url)?;
    }
    split_response(&response).ok_or_else(|| Error::Message(format!("Get \"{url}\": malformed HTTP response")))
}

/// Reads until the peer closes (a TLS peer may close without `close_notify`).
fn read_to_end(reader: &mut impl Read, out: &mut Vec<u8>, url: &str) -> Result<(), Error> {
    match reader.read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(()),
        Err(e) => Err(Error::Message(format!("Get \"{url}\": {e}"))),
    }
}

fn split_response(response: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next()?;
    let status: u16 = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or_default().to_string();
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some((status, reason, body))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_plain_and_chunked() {
        let (status, reason, body) = split_response(b"HTTP/1.0 404 File not found\r\nServer: x\r\n\r\nnope").unwrap();
        assert_eq!(
            (status, reason.as_str(), body.as_slice()),
            (404, "File not found", &b"nope"[..])
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(split_response(chunked).unwrap().2, b"abcde");
        let target = parse("http://127.0.0.1:8080/a/b.yaml").unwrap();
        assert_eq!(
            (target.host.as_str(), target.port, target.path.as_str()),
            ("127.0.0.1", 8080, "/a/b.yaml")
        );
        assert_eq!(parse("https://example.com").unwrap().port, 443);
    }
}
