//! kubectl's errors and how they are printed: `Error from server (NotFound): pods "x" not
//! found` for a `Status` from the API, `error: ...` for everything else, as upstream's
//! `cmdutil.CheckErr` words them. Every error exits with code 1.

use kube::core::Status;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with a failure `Status`.
    #[error("{}", server_message(.0))]
    Api(Box<Status>),
    /// Talking to the server failed (connection, TLS, a body that does not parse).
    #[error("{0}")]
    Client(kube::Error),
    /// Bad command-line input, printed as `error: ...`.
    #[error("{0}")]
    Usage(String),
    /// Anything else, printed as `error: ...`.
    #[error("{0}")]
    Message(String),
    /// Several failures, printed one per line as they are (upstream's aggregate errors).
    #[error("{0}")]
    Aggregate(String),
    /// A command's own exit code (`kubectl diff`, a remote command's for
    /// `exec`), with its message line (already worded, printed as it is) unless it is empty.
    #[error("{message}")]
    Exit { code: i32, message: String },
}

impl Error {
    /// The line printed on stderr.
    pub fn render(&self) -> String {
        match self {
            Error::Api(_) | Error::Aggregate(_) | Error::Exit { .. } => self.to_string(),
            _ => format!("error: {self}"),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exit { code, .. } => *code,
            _ => 1,
        }
    }

    /// The API status reason (`NotFound`, `AlreadyExists`, ...), if this came from the API.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Api(status) => Some(status.reason.as_str()),
            _ => None,
        }
    }

    /// Whether the API said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(status) if status.code == 404)
    }
}

fn server_message(status: &Status) -> String {
    if status.reason == "Invalid" {
        return invalid_message(status);
    }
    if status.reason.is_empty() {
        format!("Error from server: {}", status.message)
    } else {
        format!("Error from server ({}): {}", status.reason, status.message)
    }
}

/// Upstream's wording of an `Invalid` status: `The Kind "name" is invalid: field: message`,
/// one `* field: message` line per cause when there are several.
fn invalid_message(status: &Status) -> String {
    let Some(details) = &status.details else {
        return match status.message.as_str() {
            "" => "The request is invalid".to_string(),
            message => format!("The request is invalid: {message}"),
        };
    };
    let head = if details.kind.is_empty() && details.name.is_empty() {
        "The request is invalid".to_string()
    } else {
        format!("The {} \"{}\" is invalid", details.kind, details.name)
    };
    let causes: Vec<String> = details
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    match causes.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => format!(
            "{head}: \n{}",
            many.iter().map(|c| format!("* {c}")).collect::<Vec<_>>().join("\n")
        ),
    }
}

impl From<kube::Error> for Error {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Error::Api(status),
            other => Error::Client(other),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Message(error.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Message(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_like_upstream() {
        let mut status = Status::failure("pods \"x\" not found", "NotFound");
        status.code = 404;
        let error = Error::from(kube::Error::Api(Box::new(status)));
        assert_eq!(error.render(), "Error from server (NotFound): pods \"x\" not found");
        assert!(error.is_not_found());
        assert_eq!(Error::Usage("bad".into()).render(), "error: bad");
    }
}
