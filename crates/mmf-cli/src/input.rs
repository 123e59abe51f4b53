//! The bytes that `write` and `shm write` put in: `--text`, `--utf16`, `--hex` or `--from`.

use std::path::PathBuf;

use clap::Args;

/// Exactly one source of bytes.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Input {
    /// UTF-8 text.
    #[arg(long)]
    text: Option<String>,
    /// Text as UTF-16LE (Windows' `wchar_t`).
    #[arg(long)]
    utf16: Option<String>,
    /// Hex bytes: `48656c6c6f`, `48 65 6c 6c 6f` or `0x48,0x65`.
    #[arg(long, value_parser = parse_hex_arg)]
    hex: Option<HexBytes>,
    /// The contents of a file.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
}

impl Input {
    /// The `--from` file, if that is the input.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.from.as_deref()
    }

    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        if let Some(text) = &self.text {
            return Ok(text.as_bytes().to_vec());
        }
        if let Some(text) = &self.utf16 {
            return Ok(text.encode_utf16().flat_map(u16::to_le_bytes).collect());
        }
        if let Some(HexBytes(bytes)) = &self.hex {
            return Ok(bytes.clone());
        }
        let path = self.from.as_ref().expect("clap requires one input");
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Parsed `--hex` bytes (a newtype, so that clap takes them as one value).
#[derive(Clone, Debug)]
pub struct HexBytes(Vec<u8>);

fn parse_hex_arg(text: &str) -> Result<HexBytes, String> {
    parse_hex(text).map(HexBytes)
}

/// Hex digits in pairs; spaces, commas, `:` and `0x` prefixes are ignored.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':')
        .map(|t| t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t))
        .collect();
    let bad = |why: &str| {
        format!("invalid hex '{text}': {why}; give pairs of hex digits like 48656c6c6f")
    };
    if cleaned.is_empty() {
        return Err(bad("no digits"));
    }
    // Digits are checked as characters before any pairing: `é` is one character but two
    // bytes, so slicing the text by byte index would cut it.
    if let Some(c) = cleaned.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(bad(&format!("{c:?} is not a hex digit")));
    }
    if cleaned.len() % 2 != 0 {
        return Err(bad("an odd number of digits"));
    }
    Ok(cleaned
        .as_bytes()
        .chunks(2)
        .map(|pair| hex_value(pair[0]) << 4 | hex_value(pair[1]))
        .collect())
}

/// The value of an ASCII hex digit (checked by the caller).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("48656c6c6f"), Ok(b"Hello".to_vec()));
        assert_eq!(parse_hex("48 65 6C"), Ok(b"Hel".to_vec()));
        assert_eq!(parse_hex("0x48,0x65"), Ok(b"He".to_vec()));
        assert_eq!(parse_hex("de:ad:be:ef"), Ok(vec![0xde, 0xad, 0xbe, 0xef]));
        for bad in ["", "4", "zz", "0x", "12 3", "1é1", "é", "éé", "4é", "+1", "1 é 1"] {
            assert!(parse_hex(bad).unwrap_err().contains("hex"), "{bad}");
        }
        assert!(parse_hex("1é1").unwrap_err().contains("'é' is not a hex digit"));
    }
}
