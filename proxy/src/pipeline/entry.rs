//! The three doors into the pipeline.

use crate::host::Target;

/// The door a request came in by.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// An absolute-form request on a client connection.
    Plain,
    /// `CONNECT host:port`.
    Connect,
    /// A request inside an intercepted tunnel opened for this target.
    Inside(&'a Target),
}
