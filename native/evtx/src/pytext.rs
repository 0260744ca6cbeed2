//! Python's own text and number rules, where the mapping depends on them.
//!
//! The Python reference calls `int()`, `str.strip()`, `str.splitlines()`,
//! `str.lower()` and `ipaddress.ip_address()`; these functions give the same
//! answers. Where an input could fall into a corner whose answer is not
//! certain here (non-ASCII digits, underscores in numbers, IPv6 with an embedded
//! IPv4 part...) they answer `Err(Fallback)` and the record goes to the Python
//! code, which stays the reference.

/// The record needs the Python mapping (the compiled one is not sure of the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback;

pub type R<T> = Result<T, Fallback>;

/// `str.isspace()`.
pub fn is_py_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ' | '\u{85}'
        | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}'
        | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}'
        | '\u{2028}' | '\u{2029}')
}

/// `str.splitlines()` (without the line ends).
pub fn py_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_line_break(c) {
            lines.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `s.split(None, 1)`: the first word and the rest (leading whitespace removed).
pub fn py_split_first_word(s: &str) -> Vec<&str> {
    let s = s.trim_start_matches(is_py_space);
    if s.is_empty() {
        return Vec::new();
    }
    match s.find(is_py_space) {
        None => vec![s],
        Some(end) => {
            let rest = s[end..].trim_start_matches(is_py_space);
            if rest.is_empty() {
                vec![&s[..end]]
            } else {
                vec![&s[..end], rest]
            }
        }
    }
}

/// `s.lower()` for ASCII text; other text goes to Python (its case tables).
pub fn py_lower(s: &str) -> R<String> {
    if s.is_ascii() {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Fallback)
    }
}

/// Python's `int(s)` (base 10) or, for a `0x`/`0X` prefix, `int(s, 16)`: `None`
/// where Python raises `ValueError`. Spellings only Python's parser knows
/// (underscores, whitespace, non-ASCII digits) go to Python. Numbers beyond
/// i128 are out of every range the callers accept: `None` too.
pub fn py_int(s: &str) -> R<Option<i128>> {
    if !s.is_ascii() || s.chars().any(|c| c == '_' || is_py_space(c)) {
        return Err(Fallback);
    }
    let bytes = s.as_bytes();
    let (digits, radix, negative) = if bytes.len() >= 2 && bytes[0] == b'0'
        && (bytes[1] == b'x' || bytes[1] == b'X') {
        (&bytes[2..], 16, false)
    } else {
        match bytes.first() {
            Some(b'+') => (&bytes[1..], 10, false),
            Some(b'-') => (&bytes[1..], 10, true),
            _ => (bytes, 10, false),
        }
    };
    if digits.is_empty() {
        return Ok(None);
    }
    let mut value: i128 = 0;
    for &b in digits {
        let digit = match (b as char).to_digit(radix) {
            Some(d) => d as i128,
            None => return Ok(None),
        };
        value = match value.checked_mul(radix as i128).and_then(|v| v.checked_add(digit)) {
            Some(v) => v,
            // a valid number, but beyond any range the callers accept
            None => return Ok(Some(i128::MAX)),
        };
    }
    Ok(Some(if negative { -value } else { value }))
}

const INT64: i128 = 1 << 63;

/// `collectors.windows.winlog._int` for a string.
pub fn winlog_int_str(s: &str) -> R<Option<i64>> {
    Ok(py_int(s)?.filter(|n| (-INT64..INT64).contains(n)).map(|n| n as i64))
}

/// `collectors.windows.ecs._int`.
pub fn ecs_int(value: Option<&str>) -> R<Option<i64>> {
    let Some(s) = value else { return Ok(None) };
    if !s.is_ascii() {
        // str.isdigit() knows other scripts' digits, which int() may then reject
        return Err(Fallback);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() >= 20 {
            return Ok(None);
        }
        let n: i128 = s.parse().map_err(|_| Fallback)?;
        return Ok(if n < INT64 { Some(n as i64) } else { None });
    }
    winlog_int_str(s)
}

/// `collectors.windows.ecs._ip`: `str(ipaddress.ip_address(...))` of the value
/// (trimmed, a `::ffff:` prefix of a dotted address and brackets removed, the
/// zone cut off), or `None`.
pub fn py_ip(value: &str) -> R<Option<String>> {
    let mut text = py_strip(value);
    if text.starts_with("::ffff:") && text.contains('.') {
        text = &text[7..];
    }
    if text.starts_with('[') && text.ends_with(']') && text.len() >= 2 {
        text = &text[1..text.len() - 1];
    }
    let address = text.split('%').next().unwrap_or("");
    if let Some(v4) = parse_ipv4(address) {
        return Ok(Some(format!("{}.{}.{}.{}", v4[0], v4[1], v4[2], v4[3])));
    }
    Ok(parse_ipv6(address)?.map(format_ipv6))
}

fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut count = 0;
    for octet in text.split('.') {
        if count == 4 || octet.is_empty() || octet.len() > 3
            || !octet.bytes().all(|b| b.is_ascii_digit())
            || (octet.len() > 1 && octet.starts_with('0')) {
            return None;
        }
        let value: u32 = octet.parse().ok()?;
        if value > 255 {
            return None;
        }
        out[count] = value as u8;
        count += 1;
    }
    (count == 4).then_some(out)
}

/// `ipaddress.IPv6Address._ip_int_from_string` (Python 3.11), as hextets.
fn parse_ipv6(text: &str) -> R<Option<[u16; 8]>> {
    if text.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() < 3 {
        return Ok(None);
    }
    if parts[parts.len() - 1].contains('.') {
        // an embedded IPv4 part: Python's rules for it are its own
        return Err(Fallback);
    }
    if parts.len() > 9 {
        return Ok(None);
    }
    let mut skip_index = None;
    for (i, part) in parts.iter().enumerate().take(parts.len() - 1).skip(1) {
        if part.is_empty() {
            if skip_index.is_some() {
                return Ok(None);
            }
            skip_index = Some(i);
        }
    }
    let (parts_hi, parts_lo, parts_skipped);
    if let Some(skip) = skip_index {
        let mut hi = skip;
        let mut lo = parts.len() - skip - 1;
        if parts[0].is_empty() {
            hi -= 1;
            if hi != 0 {
                return Ok(None);
            }
        }
        if parts[parts.len() - 1].is_empty() {
            lo -= 1;
            if lo != 0 {
                return Ok(None);
            }
        }
        if hi + lo >= 8 {
            return Ok(None);
        }
        parts_hi = hi;
        parts_lo = lo;
        parts_skipped = 8 - (hi + lo);
    } else {
        if parts.len() != 8 || parts[0].is_empty() || parts[7].is_empty() {
            return Ok(None);
        }
        parts_hi = 8;
        parts_lo = 0;
        parts_skipped = 0;
    }
    let mut out = [0u16; 8];
    let mut index = 0;
    for part in &parts[..parts_hi] {
        match parse_hextet(part) {
            Some(v) => out[index] = v,
            None => return Ok(None),
        }
        index += 1;
    }
    index += parts_skipped;
    for part in &parts[parts.len() - parts_lo..] {
        match parse_hextet(part) {
            Some(v) => out[index] = v,
            None => return Ok(None),
        }
        index += 1;
    }
    Ok(Some(out))
}

fn parse_hextet(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

/// `str(IPv6Address)` of Python 3.11: lower-case hextets, the longest run (the
/// first of equals) of two or more zero hextets as `::`.
fn format_ipv6(hextets: [u16; 8]) -> String {
    let (mut best_start, mut best_len) = (usize::MAX, 0);
    let (mut start, mut len) = (usize::MAX, 0);
    for (i, &h) in hextets.iter().enumerate() {
        if h == 0 {
            len += 1;
            if start == usize::MAX {
                start = i;
            }
            if len > best_len {
                best_len = len;
                best_start = start;
            }
        } else {
            len = 0;
            start = usize::MAX;
        }
    }
    let words: Vec<String> = hextets.iter().map(|h| format!("{h:x}")).collect();
    if best_len > 1 {
        let head = words[..best_start].join(":");
        let tail = words[best_start + best_len..].join(":");
        format!("{head}::{tail}")
    } else {
        words.join(":")
    }
}

/// The last component of a Windows or POSIX path (`collectors.windows.ecs.basename`).
pub fn basename(path: &str) -> &str {
    let name = match path.rfind('\\') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    match name.rfind('/') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_follow_python() {
        assert_eq!(py_int("0x1F"), Ok(Some(31)));
        assert_eq!(py_int("-12"), Ok(Some(-12)));
        assert_eq!(py_int("0x"), Ok(None));
        assert_eq!(py_int("1_0"), Err(Fallback));
        assert_eq!(ecs_int(Some("18446744073709551615")), Ok(None));
        assert_eq!(winlog_int_str("00000000000000000001"), Ok(Some(1)));
        assert_eq!(ecs_int(Some("00000000000000000001")), Ok(None));
    }

    #[test]
    fn addresses_follow_python() {
        assert_eq!(py_ip("::ffff:10.0.0.1"), Ok(Some("10.0.0.1".into())));
        assert_eq!(py_ip("fe80::1%12"), Ok(Some("fe80::1".into())));
        assert_eq!(py_ip("1:0:0:2:0:0:0:3"), Ok(Some("1:0:0:2::3".into())));
        assert_eq!(py_ip("1:0:2:3:4:5:6:7"), Ok(Some("1:0:2:3:4:5:6:7".into())));
        assert_eq!(py_ip("010.1.1.1"), Ok(None));
        assert_eq!(py_ip("::"), Ok(Some("::".into())));
        assert_eq!(py_splitlines("a\r\nb\n"), vec!["a", "b"]);
    }
}
