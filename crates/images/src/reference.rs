//! Image reference normalisation as upstream does it (`busybox` →
//! `docker.io/library/busybox:latest`) and registry host rewriting for mirrors.

use oci_client::Reference;

use crate::error::PullError;

/// Docker Hub's canonical registry name in normalised references.
pub(crate) const DOCKER_HUB: &str = "docker.io";

/// Parses `image` and returns it fully qualified: registry (default `docker.io`), repository
/// (`library/` added for Docker Hub's official images), tag (default `latest` unless a digest is
/// given). `registry:5000/app` → `registry:5000/app:latest`.
pub fn normalize_reference(image: &str) -> Result<String, PullError> {
    parse(image).map(|reference| reference.whole())
}

pub(crate) fn parse(image: &str) -> Result<Reference, PullError> {
    let invalid = |message: String| PullError::InvalidReference {
        image: image.to_string(),
        message,
    };
    if image.is_empty() || image.trim() != image {
        return Err(invalid("invalid reference format".to_string()));
    }
    let reference = image
        .parse::<Reference>()
        .map_err(|error| invalid(format!("invalid reference format: {error}")))?;
    // The distribution grammar allows only lowercase path components.
    if reference.repository().bytes().any(|byte| byte.is_ascii_uppercase()) {
        return Err(invalid(
            "invalid reference format: repository name must be lowercase".to_string(),
        ));
    }
    Ok(reference)
}

/// `repo@digest` for a parsed reference, like the kubelet's `status.imageID`
/// (`docker.io/library/busybox@sha256:...`).
pub(crate) fn repo_digest(reference: &Reference, digest: &str) -> String {
    format!("{}/{}@{}", reference.registry(), reference.repository(), digest)
}

/// Canonical host of a registry name: the Docker Hub aliases fold into `docker.io`, and a
/// trailing `/` or URL scheme is dropped. Ports are kept.
pub(crate) fn canonical_host(host: &str) -> String {
    let host = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

/// The host to contact for `registry` after applying the mirror table (`from` → `to`).
pub(crate) fn mirror_for<'a>(registry: &str, mirrors: &'a [(String, String)]) -> Option<&'a str> {
    let registry = canonical_host(registry);
    mirrors
        .iter()
        .find(|(from, _)| canonical_host(from) == registry)
        .map(|(_, to)| to.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(normalize_reference(input).unwrap(), expected, "normalising {input}");
    }

    #[test]
    fn normalises_like_upstream() {
        check("busybox", "docker.io/library/busybox:latest");
        check("busybox:1.36", "docker.io/library/busybox:1.36");
        check("library/busybox", "docker.io/library/busybox:latest");
        check("docker.io/busybox", "docker.io/library/busybox:latest");
        check("index.docker.io/library/busybox", "docker.io/library/busybox:latest");
        check("bitnami/nginx:1.25", "docker.io/bitnami/nginx:1.25");
        check("registry:5000/app", "registry:5000/app:latest");
        check("localhost/app:v1", "localhost/app:v1");
        check("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2");
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        check(
            &format!("busybox@{digest}"),
            &format!("docker.io/library/busybox@{digest}"),
        );
    }

    #[test]
    fn rejects_invalid_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "a b",
            " busybox",
            "busybox@sha256:xyz",
            "UPPER/case",
        ] {
            let error = normalize_reference(bad).unwrap_err();
            assert_eq!(error.reason(), "InvalidImageName", "{bad}");
            assert!(
                error.to_string().starts_with("Failed to apply default image tag"),
                "{error}"
            );
        }
    }

    #[test]
    fn repo_digest_names_the_repository() {
        let reference = parse("busybox:1.36").unwrap();
        assert_eq!(
            repo_digest(&reference, "sha256:ab"),
            "docker.io/library/busybox@sha256:ab"
        );
    }

    #[test]
    fn mirrors_match_canonical_hosts() {
        let mirrors = vec![
            ("registry:5000".to_string(), "127.0.0.1:5000".to_string()),
            ("docker.io".to_string(), "127.0.0.1:6000".to_string()),
        ];
        assert_eq!(mirror_for("registry:5000", &mirrors), Some("127.0.0.1:5000"));
        assert_eq!(mirror_for("index.docker.io", &mirrors), Some("127.0.0.1:6000"));
        assert_eq!(mirror_for("registry:5001", &mirrors), None);
        assert_eq!(canonical_host("https://index.docker.io/v1/"), "docker.io");
    }
}
