//! Why a send or a receive did not happen; a send's error gives the message back, as
//! crossbeam-channel's do.

use std::fmt;

use crate::error::Error;

/// Why a message was not sent. Every variant gives the message back.
///
/// ```
/// use mmf::channel::{self, ChannelOptions, SendError};
///
/// # let name = format!("doc-senderr-{}", std::process::id());
/// let ch = channel::create(&name, ChannelOptions::new().capacity(64).max_message(8))?;
/// let mut tx = ch.sender()?;
/// assert!(tx.try_send(b"12345678").is_ok()); // a 16-byte record
/// let mut sent = 1;
/// loop {
///     match tx.try_send(b"abcdefgh".to_vec()) {
///         Ok(()) => sent += 1,
///         Err(SendError::Full(message)) => {
///             assert_eq!(message, b"abcdefgh"); // given back
///             break;
///         }
///         Err(other) => panic!("{other}"),
///     }
/// }
/// assert_eq!(sent, 3); // 16-byte records in 64 bytes, 8 of them kept for the next header
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum SendError<T> {
    /// The ring has no room now (`try_send`).
    Full(T),
    /// The ring had no room before the timeout (`send_timeout`).
    Timeout(T),
    /// No receiver is attached any more: the last one closed or died. (A new receiver may
    /// attach later; the channel's messages stay queued for it.)
    Disconnected(T),
    /// Something failed: a corrupted ring, a message larger than the maximum, an OS error.
    Failed {
        /// The message.
        message: T,
        /// What failed.
        error: Error,
    },
}

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Full(m) | SendError::Timeout(m) | SendError::Disconnected(m) => m,
            SendError::Failed { message, .. } => message,
        }
    }

    /// Whether the receivers this sender had have gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected(_))
    }

    pub(crate) fn with<U>(self, message: U) -> SendError<U> {
        match self {
            SendError::Full(_) => SendError::Full(message),
            SendError::Timeout(_) => SendError::Timeout(message),
            SendError::Disconnected(_) => SendError::Disconnected(message),
            SendError::Failed { error, .. } => SendError::Failed { message, error },
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("the channel is full"),
            SendError::Timeout(_) => f.write_str("the channel stayed full until the timeout"),
            SendError::Disconnected(_) => {
                f.write_str("no receiver is attached to the channel any more (closed or died)")
            }
            SendError::Failed { error, .. } => write!(f, "send failed: {error}"),
        }
    }
}

/// The message is not shown (it may be large or binary).
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T> std::error::Error for SendError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why no message was received.
#[derive(Debug)]
pub enum RecvError {
    /// Nothing is queued now (`try_recv`).
    Empty,
    /// Nothing came before the timeout (`recv_timeout`).
    Timeout,
    /// Every message committed has been received and the senders this receiver had are
    /// gone: the last one closed or died. (A new sender may attach later.) A receiver that
    /// never had a sender waits instead (`Empty`, `Timeout`).
    Disconnected,
    /// Something failed: a corrupted ring ([`Error::Corrupted`]), an OS error.
    Failed(Error),
}

impl RecvError {
    /// Whether the senders have gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvError::Disconnected)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => f.write_str("the channel is empty"),
            RecvError::Timeout => f.write_str("no message came before the timeout"),
            RecvError::Disconnected => f.write_str(
                "the channel is empty and no sender is attached any more (closed or died)",
            ),
            RecvError::Failed(error) => write!(f, "receive failed: {error}"),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Failed(error) => Some(error),
            _ => None,
        }
    }
}

impl From<Error> for RecvError {
    fn from(e: Error) -> Self {
        RecvError::Failed(e)
    }
}

impl From<Error> for SendError<()> {
    fn from(error: Error) -> Self {
        SendError::Failed { message: (), error }
    }
}
