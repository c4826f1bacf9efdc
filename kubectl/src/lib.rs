//! kubectl: the command-line client, a drop-in for upstream kubectl's everyday commands.

pub mod describe;
