//! The rules for names, the same on every platform.

use crate::error::{Error, Result};

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Checks a name: 1 to [`MAX_NAME_LEN`] characters from `A-Z a-z 0-9 . _ -`, not starting
/// with `.`, the same on every platform. The OS name is the name itself: `/NAME` for
/// `shm_open` on Linux, `Local\NAME` (or `Global\NAME`) on Windows.
///
/// ```
/// assert!(mmf::named::validate_name("hello_world_mmf").is_ok());
/// assert!(mmf::named::validate_name("../etc/passwd").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidName`], saying what is wrong.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &'static str| Err(Error::InvalidName { name: name.into(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return bad("it has characters other than A-Z a-z 0-9 . _ -");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "hello_world_mmf", "psm_1a2b", "x.y-z", &"n".repeat(200)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "..", "a/b", "/lead", "sp ace", "ünï", "a\\b", &"n".repeat(201)]
        {
            let err = validate_name(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad}");
            assert!(err.to_string().contains("name"), "{err}");
        }
    }
}
