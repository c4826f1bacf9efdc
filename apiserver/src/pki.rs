//! The cluster's certificates: a CA, the apiserver's serving certificate and an admin client
//! certificate, generated on first start under the data directory and reused afterwards; and
//! the admin kubeconfig that points at this apiserver.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

/// PEM material the server needs at runtime.
pub struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}

/// File layout under `<data-dir>/pki`.
struct Paths {
    dir: PathBuf,
}

impl Paths {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn base_params(common_name: &str, organizations: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for org in organizations {
        dn.push(DnType::OrganizationName, *org);
    }
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    params.serial_number = Some(SerialNumber::from(rand::random::<[u8; 16]>().to_vec()));
    params
}

/// Writes `contents` to `path` atomically (temp file in the same directory, then rename), with
/// mode 0600 since these files hold private keys or credentials.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().context("path has no parent directory")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// The SANs the serving certificate must carry.
pub fn serving_sans(bind: IpAddr, advertise: Option<IpAddr>, first_service_ip: Option<IpAddr>) -> Vec<SanType> {
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    for ip in [Some(bind), advertise, first_service_ip].into_iter().flatten() {
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let mut sans: Vec<SanType> = ips.into_iter().map(SanType::IpAddress).collect();
    for dns in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        if let Ok(name) = dns.try_into() {
            sans.push(SanType::DnsName(name));
        }
    }
    sans
}

/// Loads the PKI from `<data_dir>/pki`, generating whatever is missing. The serving certificate
/// is re-issued (by the same CA) when it lacks one of `sans`, e.g. after a new
/// `--advertise-address`.
pub fn load_or_create(data_dir: &Path, sans: &[SanType]) -> Result<Pki> {
    let paths = Paths {
        dir: data_dir.join("pki"),
    };
    std::fs::create_dir_all(&paths.dir).with_context(|| format!("creating {}", paths.dir.display()))?;

    let (ca_cert_pem, ca_key) = match (
        std::fs::read_to_string(paths.file("ca.crt")),
        std::fs::read_to_string(paths.file("ca.key")),
    ) {
        (Ok(cert), Ok(key)) => (cert, KeyPair::from_pem(&key).context("parsing pki/ca.key")?),
        _ => {
            let key = KeyPair::generate()?;
            let mut params = base_params("kaji-ca", &[]);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let cert = params.self_signed(&key)?;
            write_atomic(&paths.file("ca.key"), key.serialize_pem().as_bytes())?;
            write_atomic(&paths.file("ca.crt"), cert.pem().as_bytes())?;
            (cert.pem(), key)
        }
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).context("parsing pki/ca.crt")?;

    let serving_current = match (
        std::fs::read_to_string(paths.file("apiserver.crt")),
        std::fs::read_to_string(paths.file("apiserver.key")),
    ) {
        (Ok(cert), Ok(key)) if cert_has_sans(&cert, sans) => Some((cert, key)),
        _ => None,
    };
    let (serving_cert_pem, serving_key_pem) = match serving_current {
        Some(pair) => pair,
        None => {
            let key = KeyPair::generate()?;
            let mut params = base_params("kube-apiserver", &[]);
            params.subject_alt_names = sans.to_vec();
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let cert = params.signed_by(&key, &issuer)?;
            write_atomic(&paths.file("apiserver.key"), key.serialize_pem().as_bytes())?;
            write_atomic(&paths.file("apiserver.crt"), cert.pem().as_bytes())?;
            (cert.pem(), key.serialize_pem())
        }
    };

    let (admin_cert_pem, admin_key_pem) = match (
        std::fs::read_to_string(paths.file("admin.crt")),
        std::fs::read_to_string(paths.file("admin.key")),
    ) {
        (Ok(cert), Ok(key)) => (cert, key),
        _ => {
            let key = KeyPair::generate()?;
            let mut params = base_params("kubernetes-admin", &["system:masters"]);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &issuer)?;
            write_atomic(&paths.file("admin.key"), key.serialize_pem().as_bytes())?;
            write_atomic(&paths.file("admin.crt"), cert.pem().as_bytes())?;
            (cert.pem(), key.serialize_pem())
        }
    };

    Ok(Pki {
        ca_cert_pem,
        serving_cert_pem,
        serving_key_pem,
        admin_cert_pem,
        admin_key_pem,
    })
}

fn cert_has_sans(pem: &str, wanted: &[SanType]) -> bool {
    let Ok((_, parsed)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else {
        return false;
    };
    let Ok(cert) = parsed.parse_x509() else {
        return false;
    };
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return false;
    };
    let present: Vec<String> = ext
        .value
        .general_names
        .iter()
        .map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => dns.to_string(),
            x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default()).to_string(),
                16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default()).to_string(),
                _ => String::new(),
            },
            _ => String::new(),
        })
        .collect();
    wanted.iter().all(|san| match san {
        SanType::DnsName(dns) => present.iter().any(|p| p == dns.as_str()),
        SanType::IpAddress(ip) => present.iter().any(|p| *p == ip.to_string()),
        _ => true,
    })
}

/// The admin kubeconfig (YAML) for a server URL, with embedded credentials.
pub fn admin_kubeconfig(pki: &Pki, server: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\n\
kind: Config\n\
clusters:\n\
- name: kaji\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
users:\n\
- name: kaji-admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n\
contexts:\n\
- name: kaji\n  context:\n    cluster: kaji\n    user: kaji-admin\n    namespace: default\n\
current-context: kaji\n\
preferences: {{}}\n",
        ca = b64(&pki.ca_cert_pem),
        cert = b64(&pki.admin_cert_pem),
        key = b64(&pki.admin_key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_reissued_for_new_sans() {
        let dir = tempfile::tempdir().unwrap();
        let sans = serving_sans(IpAddr::from([127, 0, 0, 1]), None, None);
        let first = load_or_create(dir.path(), &sans).unwrap();
        let again = load_or_create(dir.path(), &sans).unwrap();
        assert_eq!(first.ca_cert_pem, again.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, again.serving_cert_pem);
        assert_eq!(first.admin_cert_pem, again.admin_cert_pem);
        let more = serving_sans(IpAddr::from([127, 0, 0, 1]), Some(IpAddr::from([10, 9, 8, 7])), None);
        let reissued = load_or_create(dir.path(), &more).unwrap();
        assert_eq!(first.ca_cert_pem, reissued.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, reissued.serving_cert_pem);
        assert!(cert_has_sans(&reissued.serving_cert_pem, &more));
        assert!(!cert_has_sans(&first.serving_cert_pem, &more));
    }
}
