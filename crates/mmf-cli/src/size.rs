//! Sizes and offsets on the command line: `4096`, `0x1000`, `20MiB`, `1G`, `64k`.
//!
//! As in coreutils: `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` are powers of 1024;
//! `KB`, `MB`, `GB`, `TB` are powers of 1000. A `B` alone means bytes.

/// Parses a byte count; the error says what is accepted.
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "invalid size '{text}': use a number of bytes like 4096, 0x1000, 64KiB, 20MiB or 1G"
        )
    };
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(multiplier).ok_or_else(|| format!("size '{text}' is larger than 2^64 bytes"))
}

/// A size that must not be 0.
pub fn parse_nonzero(text: &str) -> Result<u64, String> {
    match parse(text)? {
        0 => Err(format!("invalid size '{text}': it must be at least 1 byte")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, parse_nonzero};

    #[test]
    fn zero_is_refused_where_a_size_is_needed() {
        assert!(parse_nonzero("0").unwrap_err().contains("at least 1 byte"));
        assert_eq!(parse_nonzero("1k"), Ok(1024));
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("0x1000"), Ok(4096));
        assert_eq!(parse("20MiB"), Ok(20 << 20));
        assert_eq!(parse("1G"), Ok(1 << 30));
        assert_eq!(parse("64k"), Ok(64 << 10));
        assert_eq!(parse("10 KB"), Ok(10_000));
        assert_eq!(parse("0"), Ok(0));
    }

    #[test]
    fn refuses_the_rest_with_a_hint() {
        for bad in ["", "-1", "1.5G", "12Q", "0x", "0xZZ", "MiB", "1 2"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("20MiB"), "{bad}: {err}");
        }
        assert!(parse("16777216T").unwrap_err().contains("larger than"));
    }
}
