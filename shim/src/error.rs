//! The one error the commands return: a line that says what, where and how to fix it.

/// A command that failed, with the one line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(e: T) -> Self {
        Failure(e.to_string())
    }
}

/// Result of a command: an exit code.
pub type Outcome = Result<i32, Failure>;

/// A failed command, with its one line.
pub fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(msg.into()))
}
