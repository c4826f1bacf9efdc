//! Authentication: x509 client certificates signed by the cluster CA (user = CN, groups = O)
//! and static bearer tokens from `--token-auth-file` (upstream's CSV format:
//! `token,user,uid[,"group1,group2"]`). Authorization arrives with RBAC; until then every
//! authenticated user may do everything.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Who a request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The identity a TLS connection's client certificate proves, if any (a request extension).
#[derive(Clone, Debug, Default)]
pub struct ConnectionIdentity(pub Option<UserInfo>);

/// The user of a client certificate that already passed chain verification in the handshake.
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}

/// Static tokens.
#[derive(Clone, Debug, Default)]
pub struct TokenAuth {
    tokens: HashMap<String, UserInfo>,
}

/// Splits one CSV line, honouring double quotes.
fn csv_fields(line: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        bail!("unterminated quote");
    }
    fields.push(current);
    Ok(fields)
}

impl TokenAuth {
    pub fn parse(text: &str) -> Result<Self> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = csv_fields(line).with_context(|| format!("token file line {}", i + 1))?;
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                bail!("token file line {}: expected token,user,uid[,\"groups\"]", i + 1);
            }
            let mut groups: Vec<String> = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            groups.push("system:authenticated".into());
            tokens.insert(
                fields[0].clone(),
                UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                },
            );
        }
        Ok(Self { tokens })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    /// The user of an `Authorization` header value.
    pub fn authenticate(&self, authorization: &str) -> Option<UserInfo> {
        let token = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("bearer "))?
            .trim();
        self.tokens.get(token).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file() {
        let auth = TokenAuth::parse("# comment\ns3cret,alice,1001,\"dev,ops\"\nt2,bob,1002\n").unwrap();
        let alice = auth.authenticate("Bearer s3cret").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(auth.authenticate("Bearer t2").unwrap().uid, "1002");
        assert!(auth.authenticate("Bearer nope").is_none());
        assert!(auth.authenticate("Basic s3cret").is_none());
        assert!(TokenAuth::parse("only,two").is_err());
        assert!(TokenAuth::parse("a,b,c,\"open").is_err());
    }
}
