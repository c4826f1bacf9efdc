//! Raw API requests with the media types kubectl uses (Table, JSON, patch types), over the
//! `kube` client, which handles TLS, auth and turns failure `Status` bodies into errors.

use http::{Method, Request, header};
use serde_json::Value;

use crate::error::Error;

/// The Accept header kubectl sends for `get`: a Table if the server can, else JSON.
pub const TABLE_ACCEPT: &str =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// A request without a body.
pub async fn get(client: &kube::Client, url: &str, accept: &str) -> Result<Value, Error> {
    send(client, Method::GET, url, accept, None, Vec::new()).await
}

/// A request with a JSON body of `content_type`.
pub async fn send(
    client: &kube::Client,
    method: Method,
    url: &str,
    accept: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Value, Error> {
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header(header::ACCEPT, accept);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    let request = builder.body(body).map_err(|e| Error::Message(e.to_string()))?;
    let text = client.request_text(request).await?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text)?)
}

/// A strategic merge patch of the object at `url`.
pub async fn strategic_merge_patch(client: &kube::Client, url: &str, patch: &Value) -> Result<Value, Error> {
    send(
        client,
        Method::PATCH,
        url,
        "application/json",
        Some("application/strategic-merge-patch+json"),
        serde_json::to_vec(patch)?,
    )
    .await
}

/// Appends `key=value` query parameters (values percent-encoded) to `url`.
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    let mut first = !url.contains('?');
    for (key, value) in params {
        if value.is_empty() {
            continue;
        }
        out.push(if first { '?' } else { '&' });
        first = false;
        out.push_str(key);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_empty_ones_skipped() {
        assert_eq!(
            with_query(
                "/api/v1/pods",
                &[
                    ("labelSelector", "app in (a,b)"),
                    ("fieldSelector", ""),
                    ("limit", "500")
                ]
            ),
            "/api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29&limit=500"
        );
        assert_eq!(with_query("/x?a=1", &[("b", "2")]), "/x?a=1&b=2");
    }
}
