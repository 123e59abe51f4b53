//! The `hexdump -C` layout, byte for byte: 16 bytes a line as hex and printable ASCII,
//! runs of identical lines folded into `*`, and the end offset on a line of its own.

use std::io::{self, Write};

const LINE: usize = 16;

/// Writes `hexdump -C` lines for bytes arriving in chunks; offsets start at `start`.
pub struct HexDump<W: Write> {
    out: W,
    offset: u64,
    pending: Vec<u8>,
    previous: Option<[u8; LINE]>,
    squeezing: bool,
}

impl<W: Write> HexDump<W> {
    pub fn new(out: W, start: u64) -> Self {
        HexDump {
            out,
            offset: start,
            pending: Vec::with_capacity(LINE),
            previous: None,
            squeezing: false,
        }
    }

    /// Adds bytes; complete lines are written at once.
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if !self.pending.is_empty() {
            let take = (LINE - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < LINE {
                return Ok(());
            }
            let line: [u8; LINE] = self.pending[..].try_into().expect("a full line");
            self.pending.clear();
            self.full_line(line)?;
        }
        let mut lines = bytes.chunks_exact(LINE);
        for line in &mut lines {
            self.full_line(line.try_into().expect("chunks_exact gives whole lines"))?;
        }
        self.pending.extend_from_slice(lines.remainder());
        Ok(())
    }

    fn full_line(&mut self, line: [u8; LINE]) -> io::Result<()> {
        if self.previous == Some(line) {
            if !self.squeezing {
                writeln!(self.out, "*")?;
                self.squeezing = true;
            }
        } else {
            self.squeezing = false;
            self.previous = Some(line);
            write_line(&mut self.out, self.offset, &line)?;
        }
        self.offset += LINE as u64;
        Ok(())
    }

    /// Writes the last partial line and the end offset (nothing at all for no bytes).
    pub fn finish(mut self) -> io::Result<W> {
        let wrote_any = self.previous.is_some() || !self.pending.is_empty();
        if !self.pending.is_empty() {
            write_line(&mut self.out, self.offset, &self.pending)?;
            self.offset += self.pending.len() as u64;
        }
        if wrote_any {
            writeln!(self.out, "{:08x}", self.offset)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Hex digits, and each byte's two of them.
const HEX: &[u8; 16] = b"0123456789abcdef";
const PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    pairs
};
/// What follows the offset: 2 + 16 * 3 + 1 spaces and hex, then ` |`, 16 characters, `|\n`.
const BODY: usize = 2 + LINE * 3 + 1 + 2 + LINE + 2;

/// One line, formatted by hand into a stack buffer with fixed positions: `format!` per
/// byte made `mmf dump` spend about 2 µs a line (8 MB/s).
fn write_line(out: &mut impl Write, offset: u64, bytes: &[u8]) -> io::Result<()> {
    // 16 offset digits at most, then the body.
    let mut line = [b' '; 16 + BODY];
    let digits = (16 - offset.leading_zeros() as usize / 4).max(8);
    let be = offset.to_be_bytes();
    for (i, slot) in line[..digits].iter_mut().enumerate() {
        let nibble = digits - 1 - i; // counted from the right
        let byte = be[7 - nibble / 2];
        *slot = HEX[usize::from(if nibble % 2 == 0 { byte & 0xf } else { byte >> 4 })];
    }
    let body: &mut [u8; BODY] = (&mut line[digits..digits + BODY]).try_into().expect("sized");
    // The hex columns: two spaces after the offset, one more between the halves.
    for (i, &b) in bytes.iter().take(LINE).enumerate() {
        let at = 2 + 3 * i + usize::from(i >= 8);
        body[at..at + 2].copy_from_slice(&PAIRS[usize::from(b)]);
    }
    const TEXT: usize = 2 + LINE * 3 + 1 + 2;
    body[TEXT - 1] = b'|';
    for (slot, &b) in body[TEXT..TEXT + LINE].iter_mut().zip(bytes) {
        *slot = if (0x20..0x7f).contains(&b) { b } else { b'.' };
    }
    let end = TEXT + bytes.len().min(LINE);
    body[end] = b'|';
    body[end + 1] = b'\n';
    out.write_all(&line[..digits + end + 2])
}

/// The whole dump of `bytes` as a string (for small ranges).
#[cfg(test)]
fn to_string(bytes: &[u8], start: u64) -> String {
    let mut dump = HexDump::new(Vec::new(), start);
    dump.write(bytes).expect("writing to a Vec cannot fail");
    String::from_utf8(dump.finish().expect("writing to a Vec cannot fail")).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_hexdump_c() {
        let dump = to_string(b"HELLO\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0xyz", 0);
        assert_eq!(
            dump,
            "00000000  48 45 4c 4c 4f 00 00 00  00 00 00 00 00 00 00 00  |HELLO...........|\n\
             00000010  00 00 00 00 78 79 7a                              |....xyz|\n\
             00000017\n"
        );
    }

    #[test]
    fn identical_lines_fold_into_one_star_and_chunking_does_not_matter() {
        let bytes = [vec![1u8; 16], vec![0; 64], vec![2; 5]].concat();
        let whole = to_string(&bytes, 0x100);
        assert_eq!(
            whole,
            "00000100  01 01 01 01 01 01 01 01  01 01 01 01 01 01 01 01  |................|\n\
             00000110  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n\
             *\n\
             00000150  02 02 02 02 02                                    |.....|\n\
             00000155\n"
        );
        let mut dump = HexDump::new(Vec::new(), 0x100);
        for chunk in bytes.chunks(7) {
            dump.write(chunk).unwrap();
        }
        assert_eq!(String::from_utf8(dump.finish().unwrap()).unwrap(), whole);
    }

    #[test]
    fn offsets_past_4_gib_get_more_digits_as_hexdump_gives_them() {
        let dump = to_string(b"\x7f~ ", 0x1_2345_6789);
        assert_eq!(
            dump,
            "123456789  7f 7e 20                                          |.~ |\n\
             12345678c\n"
        );
    }

    #[test]
    fn no_bytes_print_nothing() {
        assert_eq!(to_string(b"", 0), "");
    }
}
