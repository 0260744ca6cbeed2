//! The plain access-log line: what `collectors/weblog.py`'s `_ACCESS_PLAIN`
//! matches and `AccessLogParser._plain` makes of it, without Python.
//!
//! Everything here answers `None` ("hand the line to Python") unless it is sure
//! to give exactly what the Python path gives. That covers more than a regex
//! mismatch: a character where Python's Unicode-aware `\d` could match a
//! non-ASCII digit, a timestamp Python would reject or spell differently, a
//! number Python would make a big integer of. Such lines are rare; the Python
//! parser reads them, so both paths agree by construction.

/// Python's `str.isspace()` (what `\s` matches in a `str` pattern).
fn is_py_space(c: char) -> bool {
    matches!(c,
        '\t'..='\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}'
        | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}'
        | '\u{3000}')
}

/// One line of the plain shape, split into its fields (slices of the line).
#[derive(Debug, PartialEq, Eq)]
pub struct Access<'a> {
    pub client: &'a str,
    /// `source.ip` (else `source.domain`) holds the client
    pub client_is_ip: bool,
    /// `-` when absent
    pub user: &'a str,
    pub stamp: &'a str,
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'a str,
    pub status: Option<u16>,
    pub size: Option<u64>,
    pub referrer: Option<&'a str>,
    pub agent: Option<&'a str>,
}

/// `\S+` followed by one space, from `pos`: the end of the run (where the space is).
fn token(line: &str, pos: usize) -> Option<usize> {
    let rest = line.get(pos..)?;
    let mut end = pos;
    for (i, c) in rest.char_indices() {
        if is_py_space(c) {
            end = pos + i;
            break;
        }
        end = pos + i + c.len_utf8();
    }
    (end > pos && line.as_bytes().get(end) == Some(&b' ')).then_some(end)
}

fn all_ascii_digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

/// `(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`: decimal 0..=255 without leading zeros.
fn is_octet(part: &[u8]) -> bool {
    if !all_ascii_digits(part) || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
        return false;
    }
    part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 255
}

fn is_ipv4(text: &[u8]) -> bool {
    let mut parts = 0;
    for part in text.split(|&b| b == b'.') {
        parts += 1;
        if parts > 4 || !is_octet(part) {
            return false;
        }
    }
    parts == 4
}

/// `weblog._is_ip`; `None` where Python's Unicode `\d` would have its say (a
/// client of digits, dots and non-ASCII characters that are no letters).
fn is_ip(client: &str) -> Option<bool> {
    if client.is_ascii() {
        return Some(is_ascii_ip(client.as_bytes()));
    }
    // _IPV6 is ASCII-only; _IPV4 can only match digits and dots
    if client.contains(':')
        || client
            .chars()
            .any(|c| c.is_alphabetic() || (c.is_ascii() && !c.is_ascii_digit() && c != '.'))
    {
        return Some(false);
    }
    None
}

fn is_ascii_ip(client: &[u8]) -> bool {
    if client.contains(&b':') {
        return client.iter().filter(|&&b| b == b':').count() >= 2
            && (2..=45).contains(&client.len())
            && client
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    is_ipv4(client)
}

/// Splits a line of the plain shape; `None` for any other line.
pub fn parse_plain(line: &str) -> Option<Access<'_>> {
    let b = line.as_bytes();
    if memchr::memchr(b'\\', b).is_some() {
        return None;
    }
    let client_end = token(line, 0)?;
    let client = &line[..client_end];
    let client_is_ip = is_ip(client)?;
    let ident_end = token(line, client_end + 1)?;
    let user_start = ident_end + 1;
    let user_end = token(line, user_start)?;
    let mut pos = user_end + 1;
    if b.get(pos) != Some(&b'[') {
        return None;
    }
    pos += 1;
    // [^\]]{1,64}: up to 64 characters (ASCII here, so bytes) before the ']'
    let window = &b[pos..b.len().min(pos + 65)];
    let close = window.iter().position(|&c| c == b']' || c >= 0x80)?;
    if window[close] != b']' || close == 0 {
        return None;
    }
    let stamp = &line[pos..pos + close];
    pos += close;
    if !b[pos..].starts_with(b"] \"") {
        return None;
    }
    pos += 3;
    let method_start = pos;
    while b.get(pos).is_some_and(u8::is_ascii_alphabetic) {
        pos += 1;
    }
    if pos == method_start || b.get(pos) != Some(&b' ') {
        return None;
    }
    let method = &line[method_start..pos];
    pos += 1;
    let target_start = pos;
    pos += memchr::memchr2(b' ', b'"', &b[pos..])?;
    if pos == target_start || !b[pos..].starts_with(b" HTTP/") {
        return None;
    }
    let target = &line[target_start..pos];
    pos += 6;
    // \d(?:\.\d)?" ; a non-ASCII character where a digit may stand: Python's call
    let version_start = pos;
    let digit = |at: usize| -> Option<bool> {
        match b.get(at) {
            Some(c) if c.is_ascii_digit() => Some(true),
            Some(c) if *c >= 0x80 => None,
            _ => Some(false),
        }
    };
    if !digit(pos)? {
        return None;
    }
    pos += 1;
    if b.get(pos) == Some(&b'.') && digit(pos + 1)? && b.get(pos + 2) == Some(&b'"') {
        pos += 2;
    }
    if b.get(pos) != Some(&b'"') {
        return None;
    }
    let version = &line[version_start..pos];
    pos += 1;
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // (\d{3}|-) then a space
    let status = if b.get(pos) == Some(&b'-') {
        pos += 1;
        None
    } else {
        let three = b.get(pos..pos + 3)?;
        if three.iter().any(|&c| c >= 0x80) {
            return None;
        }
        if !all_ascii_digits(three) {
            return None;
        }
        pos += 3;
        Some(three.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
    };
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // (\d+|-): the longest run of digits
    let size_start = pos;
    while b.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    let size = if pos > size_start {
        if b.get(pos).is_some_and(|&c| c >= 0x80) {
            return None; // the run might go on in digits Python reads and Rust does not
        }
        // beyond 18 digits Python makes a big integer (or refuses a huge one)
        if pos - size_start > 18 {
            return None;
        }
        Some(
            b[size_start..pos]
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
        )
    } else {
        match b.get(pos) {
            Some(b'-') => {
                pos += 1;
                None
            }
            Some(&c) if c >= 0x80 => return None,
            _ => return None,
        }
    };
    // (?: "([^"]*)" "([^"]*)")?
    let (mut referrer, mut agent) = (None, None);
    if b[pos..].starts_with(b" \"") {
        let ref_start = pos + 2;
        if let Some(ref_len) = memchr::memchr(b'"', &b[ref_start..]) {
            let ref_end = ref_start + ref_len;
            if b[ref_end..].starts_with(b"\" \"") {
                let agent_start = ref_end + 3;
                if let Some(agent_len) = memchr::memchr(b'"', &b[agent_start..]) {
                    referrer = Some(&line[ref_start..ref_end]);
                    agent = Some(&line[agent_start..agent_start + agent_len]);
                }
            }
        }
    }
    Some(Access {
        client,
        client_is_ip,
        user: &line[user_start..user_end],
        stamp,
        method,
        target,
        version,
        status,
        size,
        referrer,
        agent,
    })
}

/// The `url.*` fields `weblog._url_fields` makes of a request target.
#[derive(Debug, PartialEq, Eq)]
pub struct Url<'a> {
    pub original: &'a str,
    pub scheme: Option<String>,
    pub domain: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub extension: Option<String>,
}

/// `None` where Python's Unicode case mapping would be needed (a non-ASCII
/// scheme or extension).
pub fn url_fields(target: &str) -> Option<Url<'_>> {
    let (mut path, query) = match target.find('?') {
        Some(q) => (&target[..q], Some(&target[q + 1..])),
        None => (target, None),
    };
    let (mut scheme, mut domain) = (None, None);
    // "://" in path[:12], twelve characters
    let head_end = path.char_indices().nth(12).map_or(path.len(), |(i, _)| i);
    if let Some(at) = path[..head_end].find("://") {
        let name = &path[..at];
        if !name.is_ascii() {
            return None;
        }
        scheme = Some(name.to_ascii_lowercase());
        let rest = &path[at + 3..];
        match rest.find('/') {
            Some(slash) => {
                domain = Some(&rest[..slash]);
                path = &rest[slash..];
            }
            None => {
                domain = Some(rest);
                path = "";
            }
        }
    }
    let mut extension = None;
    if let Some(dot) = path.rfind('.') {
        if path.rfind('/').is_none_or(|slash| dot > slash) {
            let ext = &path[dot + 1..];
            let chars = ext.chars().count();
            if (1..=10).contains(&chars) {
                if !ext.is_ascii() {
                    return None;
                }
                extension = Some(ext.to_ascii_lowercase());
            }
        }
    }
    Some(Url {
        original: target,
        scheme,
        domain,
        path,
        query,
        extension,
    })
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn number(digits: &[u8]) -> Option<i64> {
    all_ascii_digits(digits).then(|| {
        digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
    })
}

/// `AccessLogParser._timestamp`: `10/Oct/2000:13:55:36 -0700` →
/// `2000-10-10T20:55:36.000000Z`. `None` for what Python rejects, and for
/// years before 1000 (which Python's strftime spells without padding).
pub fn clf_timestamp(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    // (\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?$
    let slash = b.iter().position(|&c| c == b'/')?;
    if !(1..=2).contains(&slash) {
        return None;
    }
    let day = number(&b[..slash])?;
    let rest = &b[slash + 1..];
    if rest.len() < 17 || rest[3] != b'/' || rest[8] != b':' || rest[11] != b':' || rest[14] != b':'
    {
        return None;
    }
    let month = MONTHS.iter().position(|m| &rest[..3] == *m)? as i64 + 1;
    let year = number(&rest[4..8])?;
    let hour = number(&rest[9..11])?;
    let minute = number(&rest[12..14])?;
    let second = number(&rest[15..17])?;
    let offset = match &rest[17..] {
        [] => 0,
        [b' ', sign @ (b'+' | b'-'), zone @ ..] if zone.len() == 4 => {
            let seconds = (number(&zone[..2])? * 60 + number(&zone[2..])?) * 60;
            if *sign == b'+' {
                seconds
            } else {
                -seconds
            }
        }
        _ => return None,
    };
    if year < 1
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let moment =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let days = moment.div_euclid(86_400);
    let clock = moment.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(1000..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000Z",
        clock / 3600,
        clock % 3600 / 60,
        clock % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line() {
        let a = parse_plain(
            "10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 200 2326 \"-\" \"x y\"",
        )
        .unwrap();
        assert_eq!(a.client, "10.0.0.1");
        assert!(a.client_is_ip);
        assert_eq!(a.user, "bob");
        assert_eq!(a.status, Some(200));
        assert_eq!(a.size, Some(2326));
        assert_eq!(a.referrer, Some("-"));
        assert_eq!(a.agent, Some("x y"));
    }

    /// A line with the given fields (kept for the test's life).
    fn line(client: &str, user: &str, request: &str, rest: &str) -> &'static str {
        let text = format!("{client} - {user} [10/Oct/2000:13:55:36 -0700] \"{request}\" {rest}");
        Box::leak(text.into_boxed_str())
    }

    #[test]
    fn clients() {
        let client = |c: &str| parse_plain(line(c, "-", "GET / HTTP/1.1", "200 1"));
        assert!(client("2001:db8::1").unwrap().client_is_ip);
        assert!(!client("a:b").unwrap().client_is_ip);
        assert!(!client("01.2.3.4").unwrap().client_is_ip);
        assert!(!client("256.1.1.1").unwrap().client_is_ip);
        assert!(!client("bücher.example").unwrap().client_is_ip);
        // digits Python's \d reads and Rust does not: Python's call
        assert_eq!(client("\u{661}.2.3.4"), None);
    }

    #[test]
    fn python_whitespace_ends_no_token_but_a_space_does() {
        assert_eq!(
            parse_plain(line("1.2.3.4", "a\u{a0}b", "GET / HTTP/1.1", "200 1")),
            None
        );
        assert_eq!(
            parse_plain(line("1.2.3.4", "a\u{1c}b", "GET / HTTP/1.1", "200 1")),
            None
        );
        let a = parse_plain(line("1.2.3.4", "nguyễn", "GET / HTTP/1.1", "200 1")).unwrap();
        assert_eq!(a.user, "nguyễn");
    }

    #[test]
    fn status_size_and_tail() {
        let rest = |r: &str| parse_plain(line("1.2.3.4", "-", "GET / HTTP/1.1", r));
        assert_eq!(rest("- -").unwrap().status, None);
        assert_eq!(rest("2000 1"), None);
        assert_eq!(
            rest("200 999999999999999999").unwrap().size,
            Some(999_999_999_999_999_999)
        );
        assert_eq!(rest("200 9999999999999999999"), None); // a Python big int
        assert_eq!(rest("200 12\u{663}"), None);
        let a = rest("200 1 \"r\" \"a").unwrap();
        assert_eq!((a.referrer, a.agent), (None, None));
        let a = rest("200 1 \"\" \"\" \"x\"").unwrap();
        assert_eq!((a.referrer, a.agent), (Some(""), Some("")));
    }

    #[test]
    fn requests() {
        let request = |r: &str| parse_plain(line("1.2.3.4", "-", r, "200 1"));
        assert_eq!(request("GET / HTTP/1.").map(|a| a.version), None);
        assert_eq!(request("GET / HTTP/2").unwrap().version, "2");
        assert_eq!(request("GET / HTTP/1.1x"), None);
        assert_eq!(request("G3T / HTTP/1.1"), None);
        assert_eq!(request("GET /a\\b HTTP/1.1"), None);
    }

    #[test]
    fn event_ids_are_blake2b_of_16_bytes() {
        // hashlib.blake2b(b"abc\x001234", digest_size=16).hexdigest()
        assert_eq!(
            &crate::event_id(b"abc\x00", 1234),
            b"4f2ad899df1ec7ecbaa1fce6a133df76"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            clf_timestamp("10/Oct/2000:13:55:36 -0700").as_deref(),
            Some("2000-10-10T20:55:36.000000Z")
        );
        assert_eq!(
            clf_timestamp("1/Jan/2000:01:00:00 +0700").as_deref(),
            Some("1999-12-31T18:00:00.000000Z")
        );
        assert_eq!(clf_timestamp("29/Feb/2001:00:00:00 +0000"), None);
        assert_eq!(clf_timestamp("10/oct/2000:13:55:36 -0700"), None);
    }

    #[test]
    fn urls() {
        let u = url_fields("HTTP://Example.org/a/b.PHP?x=1#f").unwrap();
        assert_eq!(u.scheme.as_deref(), Some("http"));
        assert_eq!(u.domain, Some("Example.org"));
        assert_eq!(u.path, "/a/b.PHP");
        assert_eq!(u.query, Some("x=1#f"));
        assert_eq!(u.extension.as_deref(), Some("php"));
    }
}
