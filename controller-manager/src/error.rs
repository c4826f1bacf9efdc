//! The controller-manager's typed errors.

/// Everything that can go wrong while running or reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{verb} {kind} {key}: {source}")]
    Api {
        verb: &'static str,
        kind: &'static str,
        key: String,
        #[source]
        source: kube::Error,
    },
    /// A flag value is invalid.
    #[error("invalid value for --{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// Building the client failed.
    #[error("building the API client: {0}")]
    Client(#[source] kube::Error),
    /// Reading the kubeconfig failed.
    #[error("reading kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    /// An object could not be (de)serialized.
    #[error("encoding {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A shared cache never became ready.
    #[error("cache for {0} stopped before it synced")]
    CacheStopped(&'static str),
    /// API discovery failed.
    #[error("discovering the served resources: {0}")]
    Discovery(#[source] kube::Error),
    /// An owner reference names a kind discovery does not know.
    #[error("owner {api_version} {kind} of {key} is of an unknown kind")]
    UnknownOwnerKind {
        key: String,
        api_version: String,
        kind: String,
    },
    /// Leader election failed or leadership was lost.
    #[error(transparent)]
    LeaderElection(#[from] component_base::leader_election::LeaderElectionError),
}

impl Error {
    /// Wraps an API error with the verb, kind and object key it concerns.
    pub fn api(verb: &'static str, kind: &'static str, key: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            verb,
            kind,
            key: key.into(),
            source,
        }
    }

    /// The HTTP status code of an API error, if any.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// True when `error` is a 404 from the API.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// True when `error` is a 409 AlreadyExists / Conflict from the API.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
