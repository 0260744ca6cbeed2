//! A record's JSON text as a borrowed tree: strings without escapes point into
//! the text, objects are small vectors (few allocations per record).
//!
//! Objects keep the first position and the last value of a repeated key, as a
//! Python dict built by `orjson.loads` does.

use std::borrow::Cow;

pub type Members<'a> = Vec<(Cow<'a, str>, J<'a>)>;

#[derive(Debug, Clone, Default)]
pub enum J<'a> {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// A float, or an integer beyond 64 bits (both floats for orjson too).
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    Obj(Members<'a>),
}

impl<'a> J<'a> {
    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(members) => get(members, key),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, J::Null)
    }
}

pub fn get<'m, 'a>(members: &'m Members<'a>, key: &str) -> Option<&'m J<'a>> {
    members.iter().find(|(k, _)| same(k, key)).map(|(_, v)| v)
}

pub fn position(members: &Members<'_>, key: &str) -> Option<usize> {
    members.iter().position(|(k, _)| same(k, key))
}

/// Name equality: most names differ in length or first byte.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.as_bytes().first() == b.as_bytes().first()
        && a.as_bytes() == b.as_bytes()
}

pub fn remove<'a>(members: &mut Members<'a>, key: &str) -> Option<J<'a>> {
    position(members, key).map(|i| members.remove(i).1)
}

/// `members.setdefault(key, value)`
pub fn set_default<'a>(members: &mut Members<'a>, key: Cow<'a, str>, value: J<'a>) {
    if position(members, &key).is_none() {
        members.push((key, value));
    }
}

/// `members[key] = value`
pub fn insert<'a>(members: &mut Members<'a>, key: Cow<'a, str>, value: J<'a>) {
    match position(members, &key) {
        Some(i) => members[i].1 = value,
        None => members.push((key, value)),
    }
}

/// Nesting deeper than this goes to Python (orjson's own limit is higher).
const MAX_DEPTH: usize = 200;

/// The tree of a JSON text, or `None` where it is not strict JSON (RFC 8259), holds
/// an escaped lone surrogate (orjson refuses both) or nests too deep: Python then
/// decides.
pub fn parse(text: &str) -> Option<J<'_>> {
    let mut parser = Parser { text, bytes: text.as_bytes(), at: 0 };
    let value = parser.value(0)?;
    parser.skip_space();
    (parser.at == parser.bytes.len()).then_some(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    #[inline]
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: J<'a>) -> Option<J<'a>> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<J<'a>> {
        self.skip_space();
        match *self.bytes.get(self.at)? {
            b'"' => self.string().map(J::Str),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"true", J::Bool(true)),
            b'f' => self.literal(b"false", J::Bool(false)),
            b'n' => self.literal(b"null", J::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<J<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let mut members: Members<'a> = Vec::with_capacity(8);
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(J::Obj(members));
        }
        // a key whose mark is not yet set is new: most keys skip the search
        let mut seen = 0u64;
        loop {
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b':') {
                return None;
            }
            self.at += 1;
            let value = self.value(depth)?;
            let bytes = key.as_bytes();
            let mark = 1u64 << ((bytes.len() * 7 + bytes.first().map_or(0, |b| *b as usize)
                + bytes.last().map_or(0, |b| *b as usize * 3)) & 63);
            if seen & mark == 0 {
                seen |= mark;
                members.push((key, value));
            } else {
                insert(&mut members, key, value);
            }
            self.skip_space();
            match self.bytes.get(self.at)? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(J::Obj(members));
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<J<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Some(J::Arr(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_space();
            match self.bytes.get(self.at)? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(J::Arr(items));
                }
                _ => return None,
            }
        }
    }

    fn number(&mut self) -> Option<J<'a>> {
        let bytes = self.bytes;
        let mut at = self.at;
        let negative = bytes[at] == b'-';
        if negative {
            at += 1;
        }
        let digits = at;
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = bytes.get(at) {
                    at += 1;
                }
            }
            _ => return None,
        }
        let integer_end = at;
        let mut float = false;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            let from = at;
            while let Some(b'0'..=b'9') = bytes.get(at) {
                at += 1;
            }
            if at == from {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            let from = at;
            while let Some(b'0'..=b'9') = bytes.get(at) {
                at += 1;
            }
            if at == from {
                return None;
            }
            float = true;
        }
        self.at = at;
        if float {
            // its value never matters: every use of a float goes to Python
            return Some(J::Float(0.0));
        }
        let text = &self.text[digits..integer_end];
        if text.len() > 20 {
            return Some(J::Float(0.0)); // beyond 64 bits: a float for orjson too
        }
        let magnitude: u128 = text.parse().ok()?;
        Some(if negative {
            if magnitude <= 1u128 << 63 {
                J::Int((magnitude as i128).wrapping_neg() as i64)
            } else {
                J::Float(0.0)
            }
        } else if magnitude <= i64::MAX as u128 {
            J::Int(magnitude as i64)
        } else if magnitude <= u64::MAX as u128 {
            J::UInt(magnitude as u64)
        } else {
            J::Float(0.0)
        })
    }

    /// A string at `"`; borrowed from the text unless it holds escapes.
    #[inline]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.at += 1;
        let start = self.at;
        let at = special(self.bytes, start);
        match *self.bytes.get(at)? {
            b'"' => {
                self.at = at + 1;
                Some(Cow::Borrowed(&self.text[start..at]))
            }
            b'\\' => self.escaped_string(start, at),
            _ => None, // a control character
        }
    }

    fn escaped_string(&mut self, start: usize, first_escape: usize) -> Option<Cow<'a, str>> {
        let bytes = self.bytes;
        let mut out = String::with_capacity(first_escape - start + 16);
        out.push_str(&self.text[start..first_escape]);
        let mut at = first_escape;
        let mut run = at;
        loop {
            match *bytes.get(at)? {
                b'"' => {
                    out.push_str(&self.text[run..at]);
                    self.at = at + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    out.push_str(&self.text[run..at]);
                    let escape = *bytes.get(at + 1)?;
                    at += 2;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4(at)?;
                            at += 4;
                            let code = if (0xd800..0xdc00).contains(&high) {
                                if bytes.get(at) != Some(&b'\\') || bytes.get(at + 1) != Some(&b'u') {
                                    return None;
                                }
                                let low = self.hex4(at + 2)?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return None;
                                }
                                at += 6;
                                0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                            } else if (0xdc00..0xe000).contains(&high) {
                                return None;
                            } else {
                                high
                            };
                            out.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    }
                    run = at;
                }
                0..=0x1f => return None,
                _ => at = special(bytes, at),
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        let mut value = 0u32;
        for &d in digits {
            value = value * 16 + (d as char).to_digit(16)?;
        }
        Some(value)
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the first `"`, `\\` or control character at or after `from`
/// (the length when there is none), eight bytes at a time.
#[inline]
fn special(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while at + 8 <= bytes.len() {
        // SAFETY: at + 8 <= len: eight readable bytes
        let word = u64::from_le(unsafe { bytes.as_ptr().add(at).cast::<u64>().read_unaligned() });
        let quote = word ^ (ONES * b'"' as u64);
        let slash = word ^ (ONES * b'\\' as u64);
        // a byte is flagged when it is zero (below 0x20 for the last term); only
        // the lowest flag is exact, which is the one taken
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (word.wrapping_sub(ONES * 0x20) & !word)) & HIGHS;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return at;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers() {
        let text = r#"{"a":"x\\y\"z","b":[1,-2,18446744073709551615,1.5,1e3],"a":"last","c":"\ud83d\ude00é"}"#;
        let J::Obj(members) = parse(text).unwrap() else { panic!() };
        assert_eq!(members.len(), 3);
        assert!(matches!(&members[0].1, J::Str(s) if s == "last"));
        assert!(matches!(&members[2].1, J::Str(s) if s == "\u{1f600}é"));
        assert!(parse(r#"{"a":"\ud800"}"#).is_none());
        assert!(parse("[01]").is_none());
        assert!(parse("[1,]").is_none());
        assert!(parse(r#""a\u0001""#).is_some());
        assert!(parse("\"a\u{1}\"").is_none());
        assert_eq!(special(b"abcdefghijklmnop\"", 0), 16);
        assert_eq!(special(b"abc\\defghijklmnop", 0), 3);
    }
}
