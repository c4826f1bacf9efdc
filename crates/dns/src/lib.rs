//! Cluster DNS: answers for the cluster domain from Services, EndpointSlices and pods.
//!
//! - [`catalog`]: the in-memory [`Catalog`] built from API objects, shared as [`SharedCatalog`].
//! - [`answer`]: the pure function from a catalog and a question to an [`Answer`].
//! - `server`: hickory-server glue (UDP + TCP, forwarding outside the zone) and the reflectors.
//! - `resolv_conf`: upstream resolvers from `/etc/resolv.conf`.

pub mod answer;
pub mod catalog;
mod resolv_conf;
mod server;

pub use answer::{Answer, answer};
pub use catalog::{Catalog, SharedCatalog};
pub use resolv_conf::upstreams_from_resolv_conf;
pub use server::{DnsConfig, DnsServer, Error, serve, serve_catalog};
