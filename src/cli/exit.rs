//! How a command ends, and the exit code that tells it, the same for every command:
//!
//! | Code | Meaning |
//! | --- | --- |
//! | 0 | done; `sync --dry-run`: nothing would change; `wait`: the current generation's run succeeded |
//! | 1 | the answer is no: `sync --dry-run` has changes to make; `wait` (or `--wait`) saw the run fail; `approve` was declined; `run` lost its leader lease or its election failed |
//! | 2 | error: invalid arguments, a cluster or directory that cannot be reached, a task that does not exist |
//! | 3 | `wait` (or `--wait`) ran out of time |

/// The text `--help` ends with.
pub const CODES: &str = "Exit codes: 0 done (sync --dry-run: nothing would change); 1 the answer \
    is no (sync --dry-run: changes pending; wait: the run failed; approve: declined; run: the \
    leader lease was lost); 2 error; 3 wait timed out.";

pub const NO: u8 = 1;
pub const ERROR: u8 = 2;
pub const TIMED_OUT: u8 = 3;

/// A command that did not end with 0: its exit code, and what to print on standard error (nothing
/// when the output already said it, as with pending changes).
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn no(message: impl Into<String>) -> Failure {
        Failure {
            code: NO,
            message: message.into(),
        }
    }

    pub fn timed_out(message: impl Into<String>) -> Failure {
        Failure {
            code: TIMED_OUT,
            message: message.into(),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            code: ERROR,
            message,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::from(message.to_owned())
    }
}
