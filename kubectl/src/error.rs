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
    /// A line printed as it is (one of several errors upstream reports one per line).
    #[error("{0}")]
    Plain(String),
}

impl Error {
    /// The line printed on stderr.
    pub fn render(&self) -> String {
        match self {
            Error::Api(_) | Error::Plain(_) => self.to_string(),
            _ => format!("error: {self}"),
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
    if status.reason.is_empty() {
        format!("Error from server: {}", status.message)
    } else {
        format!("Error from server ({}): {}", status.reason, status.message)
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
