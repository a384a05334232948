//! Reading input lines safely: bounded length, invalid UTF-8 reported
//! rather than fatal.

use std::io::{self, BufRead, Read};

/// The longest line the node accepts. Longer lines are skipped whole.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One line of input, or why it cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line of text, without its newline.
    Text(String),
    /// A line longer than [`MAX_LINE_BYTES`]; its bytes were discarded.
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Reads the next line. Returns `Ok(None)` at end of input.
pub fn next_line(input: &mut impl BufRead) -> io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let read = input.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_BYTES {
        skip_rest_of_line(input)?;
        return Ok(Some(Line::TooLong));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(match String::from_utf8(buf) {
        Ok(text) => Line::Text(text),
        Err(_) => Line::NotUtf8,
    }))
}

fn skip_rest_of_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let len = chunk.len();
                input.consume(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<Line> {
        let mut input = io::BufReader::new(bytes);
        std::iter::from_fn(|| next_line(&mut input).expect("in-memory read")).collect()
    }

    #[test]
    fn splits_lines_and_strips_line_endings() {
        assert_eq!(
            lines(b"a\nb\r\nc"),
            [
                Line::Text("a".into()),
                Line::Text("b".into()),
                Line::Text("c".into())
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_reported_and_reading_goes_on() {
        assert_eq!(
            lines(b"\xff\xfe\nok\n"),
            [Line::NotUtf8, Line::Text("ok".into())]
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_whole() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(lines(&input), [Line::TooLong, Line::Text("next".into())]);
    }
}
