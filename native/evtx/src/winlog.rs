//! One record's XML-as-JSON → the base event (`winlog.*`, `event.*`, `host.name`,
//! `@timestamp`, `log.level`, `message`): `collectors.windows.winlog.winlog_event`.

use std::borrow::Cow;

use crate::json::{get, insert, position, remove, set_default, Members, J};

use crate::pytext::{py_int, py_lower, py_strip, winlog_int_str, Fallback, R};
use crate::tree::{Obj, V};

pub const MODULE: &str = "windows";

/// The record's base event and the data section the enrichment reads.
pub struct Base<'a> {
    pub event: Obj<'a>,
    pub data: Members<'a>,
    pub code: Cow<'a, str>,
    pub provider_name: Cow<'a, str>,
    pub computer: Cow<'a, str>,
    pub channel: Cow<'a, str>,
    pub record_id: Cow<'a, str>,
    pub timestamp: Cow<'a, str>,
}

fn is_int(v: &J<'_>) -> bool {
    matches!(v, J::Int(_) | J::UInt(_))
}

fn int_text(v: &J<'_>) -> Option<String> {
    match v {
        J::Int(i) => Some(i.to_string()),
        J::UInt(u) => Some(u.to_string()),
        _ => None,
    }
}

/// Python truthiness of a JSON value (floats go to Python).
fn truthy(v: &J<'_>) -> R<bool> {
    Ok(match v {
        J::Null => false,
        J::Bool(b) => *b,
        J::Int(i) => *i != 0,
        J::UInt(u) => *u != 0,
        J::Float(_) => return Err(Fallback),
        J::Str(s) => !s.is_empty(),
        J::Arr(a) => !a.is_empty(),
        J::Obj(o) => !o.is_empty(),
    })
}

/// `_scalar_text`
pub fn scalar_text(v: J<'_>) -> R<Cow<'_, str>> {
    match v {
        J::Str(s) => Ok(s),
        J::Null => Ok(Cow::Borrowed("")),
        J::Bool(true) => Ok(Cow::Borrowed("true")),
        J::Bool(false) => Ok(Cow::Borrowed("false")),
        J::Int(_) | J::UInt(_) => Ok(Cow::Owned(int_text(&v).unwrap_or_default())),
        J::Float(_) => Err(Fallback),
        J::Obj(mut o) => {
            if matches!(get(&o, "#text"), Some(t) if !matches!(t, J::Arr(_))) {
                return scalar_text(remove(&mut o, "#text").unwrap_or_default());
            }
            // an element with attributes only renders empty; nested elements as
            // orjson's JSON, which is left to Python
            if o.iter().all(|(k, _)| k == "#attributes") {
                Ok(Cow::Borrowed(""))
            } else {
                Err(Fallback)
            }
        }
        J::Arr(a) => {
            if a.is_empty() {
                Ok(Cow::Borrowed(""))
            } else {
                Err(Fallback)
            }
        }
    }
}

/// `data_text`: a string, or a list of strings.
pub fn data_text(v: J<'_>) -> R<J<'_>> {
    match v {
        J::Str(_) => Ok(v),
        J::Arr(items) => Ok(J::Arr(
            items.into_iter().map(|i| scalar_text(i).map(J::Str)).collect::<R<_>>()?,
        )),
        J::Obj(mut o) if position(&o, "#text").is_some() => {
            data_text(remove(&mut o, "#text").unwrap_or_default())
        }
        other => scalar_text(other).map(J::Str),
    }
}

/// `_text`: Python's `str(data_text(value))`, for strings and missing values only.
fn text_of<'a>(v: Option<&J<'a>>) -> R<Cow<'a, str>> {
    match v {
        None | Some(J::Null) => Ok(Cow::Borrowed("")),
        Some(J::Str(s)) => Ok(s.clone()),
        Some(_) => Err(Fallback),
    }
}

/// `event_data_fields`
pub fn event_data_fields(section: J<'_>) -> R<Members<'_>> {
    let mut out = match section {
        J::Obj(o) => o,
        J::Null => return Ok(Vec::new()),
        other => return Ok(vec![(Cow::Borrowed("param1"), data_text(other)?)]),
    };
    let mut unnamed: Option<J<'_>> = None;
    for (name, value) in out.iter_mut() {
        if matches!(value, J::Str(_)) && name != "Data" {
            continue;
        }
        if name == "Data" || name == "#text" {
            unnamed = Some(std::mem::take(value));
        } else if let Some(text) = int_text(value) {
            *value = J::Str(Cow::Owned(text));
        } else if name != "#attributes" {
            *value = data_text(std::mem::take(value))?;
        }
    }
    remove(&mut out, "#attributes");
    if let Some(mut unnamed) = unnamed {
        remove(&mut out, "#text");
        if let J::Obj(o) = &mut unnamed {
            if let Some(text) = remove(o, "#text") {
                unnamed = text;
            }
        }
        let items = match unnamed {
            J::Arr(items) => items,
            other => vec![other],
        };
        let texts: Vec<Cow<'_, str>> = items.into_iter().map(scalar_text).collect::<R<_>>()?;
        for (i, text) in texts.iter().enumerate() {
            set_default(&mut out, Cow::Owned(format!("param{}", i + 1)), J::Str(text.clone()));
        }
        let data = if texts.len() == 1 {
            J::Str(texts.into_iter().next().unwrap_or_default())
        } else {
            J::Arr(texts.into_iter().map(J::Str).collect())
        };
        insert(&mut out, Cow::Borrowed("Data"), data);
    }
    Ok(out)
}

fn flatten_user_data<'a>(node: &Members<'a>, into: &mut Members<'a>) -> R<()> {
    for (name, value) in node {
        if name == "#attributes" {
            continue;
        }
        match value {
            J::Obj(o) if position(o, "#text").is_none() => flatten_user_data(o, into)?,
            _ => {
                if position(into, name).is_none() {
                    into.push((name.clone(), data_text(value.clone())?));
                }
            }
        }
    }
    Ok(())
}

fn user_data_fields<'a>(section: &J<'a>) -> R<Option<Members<'a>>> {
    let J::Obj(section) = section else { return Ok(None) };
    let mut out: Members<'a> = Vec::new();
    for (name, value) in section {
        if name == "#attributes" {
            continue;
        }
        insert(&mut out, Cow::Borrowed("xml_name"), J::Str(name.clone()));
        if let J::Obj(children) = value {
            for (key, item) in children {
                if key != "#attributes" {
                    insert(&mut out, key.clone(), data_text(item.clone())?);
                }
            }
        } else {
            insert(&mut out, Cow::Borrowed("#text"), data_text(value.clone())?);
        }
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

fn attributes<'m, 'a>(node: Option<&'m J<'a>>) -> Option<&'m Members<'a>> {
    match node?.get("#attributes") {
        Some(J::Obj(a)) => Some(a),
        _ => None,
    }
}

/// `_scalar_text` of a truthy attribute that must be a string here.
fn attr_text<'a>(v: &J<'a>) -> R<Cow<'a, str>> {
    match v {
        J::Str(s) => Ok(s.clone()),
        _ => Err(Fallback),
    }
}

/// `collectors.windows.winlog._int` of a JSON value.
fn winlog_int(v: &J<'_>) -> R<Option<i64>> {
    match v {
        J::Int(i) => Ok(Some(*i)),
        J::UInt(_) => Ok(None), // beyond an ECS long
        J::Float(_) => Err(Fallback), // a float, or an integer beyond 64 bits
        J::Str(s) => winlog_int_str(s),
        J::Bool(_) | J::Null | J::Arr(_) | J::Obj(_) => Ok(None),
    }
}

/// `str(value)` of Task and Opcode: integers and strings only.
fn str_of<'a>(v: &J<'a>) -> R<Cow<'a, str>> {
    match v {
        J::Str(s) => Ok(s.clone()),
        _ => int_text(v).map(Cow::Owned).ok_or(Fallback),
    }
}

const LEVELS: [&str; 6] = ["information", "critical", "error", "warning", "information",
                           "verbose"];

const KEYWORD_BITS: [(i128, &str); 8] = [
    (0x10000000000000, "Audit Failure"),
    (0x20000000000000, "Audit Success"),
    (0x80000000000000, "Classic"),
    (0x40000000000000, "Correlation Hint"),
    (0x08000000000000, "SQM"),
    (0x04000000000000, "WDI Diag"),
    (0x02000000000000, "WDI Context"),
    (0x01000000000000, "Response Time"),
];

/// `keyword_names` without the mask itself (which follows the names).
pub fn keyword_bits(mask: &str) -> R<Vec<&'static str>> {
    // int(mask, 16) behind a 0x prefix, int(mask) otherwise: py_int's own rule
    let Some(value) = py_int(mask)? else { return Ok(Vec::new()) };
    if value == i128::MAX {
        return Err(Fallback);
    }
    Ok(KEYWORD_BITS.iter().filter(|(bit, _)| value & bit != 0).map(|(_, name)| *name).collect())
}

/// `dataset_for_channel`
pub fn dataset_for_channel(channel: &str) -> R<String> {
    let key = py_lower(py_strip(channel))?;
    let known = match key.as_str() {
        "security" => Some("windows.security"),
        "system" => Some("windows.system"),
        "application" => Some("windows.application"),
        "setup" => Some("windows.setup"),
        "windows powershell" => Some("windows.powershell"),
        "forwardedevents" => Some("windows.forwarded"),
        "microsoft-windows-sysmon/operational" => Some("windows.sysmon_operational"),
        "microsoft-windows-powershell/operational" => Some("windows.powershell_operational"),
        "linux-sysmon/operational" => Some("sysmon_linux.log"),
        _ => None,
    };
    if let Some(dataset) = known {
        return Ok(dataset.to_owned());
    }
    let key = key.strip_prefix("microsoft-windows-").unwrap_or(&key);
    let mut slug = String::with_capacity(key.len());
    let mut in_run = false;
    for c in key.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
            in_run = false;
        } else if !in_run {
            slug.push('_');
            in_run = true;
        }
    }
    let slug = slug.trim_matches('_');
    let slug = &slug[..slug.len().min(80)];
    Ok(format!("windows.{}", if slug.is_empty() { "unknown" } else { slug }))
}

/// `winlog_event` without the ids (the caller adds `event.id` and `event.original`).
pub fn base_event(record: J<'_>) -> R<Base<'_>> {
    let J::Obj(mut record) = record else { return Err(Fallback) };
    let mut root = if position(&record, "Event").is_some() {
        match remove(&mut record, "Event") {
            Some(J::Obj(o)) => o,
            _ => return Err(Fallback),
        }
    } else {
        record
    };
    let root_len = root.len();
    let system_value = remove(&mut root, "System");
    let Some(system @ J::Obj(_)) = &system_value else { return Err(Fallback) };
    let get = |k: &str| system.get(k);

    let mut qualifiers = None;
    let code: Cow<'_, str> = match get("EventID") {
        Some(v) if is_int(v) => Cow::Owned(int_text(v).unwrap_or_default()),
        raw => {
            let mut raw = raw;
            if let Some(node @ J::Obj(_)) = raw {
                qualifiers = attributes(raw).and_then(|a| get_member(a, "Qualifiers"));
                raw = node.get("#text");
            }
            match raw {
                Some(J::Str(s)) if !s.is_empty() => s.clone(),
                Some(v) if is_int(v) => Cow::Owned(int_text(v).unwrap_or_default()),
                _ => return Err(Fallback),
            }
        }
    };

    let created = attributes(get("TimeCreated")).and_then(|a| get_member(a, "SystemTime"));
    let timestamp = match created {
        Some(J::Str(s)) if s.len() == 27 && s.is_ascii() && s.as_bytes()[26] == b'Z'
            && s.as_bytes()[19] == b'.' => s.clone(),
        _ => return Err(Fallback),
    };

    let channel = text_of(get("Channel"))?;
    let computer = text_of(get("Computer"))?;
    let provider = attributes(get("Provider"));
    let provider_name = match provider {
        Some(p) if position(p, "Name").is_some() => text_of(get_member(p, "Name"))?,
        Some(p) => match get_member(p, "EventSourceName") {
            Some(v) if truthy(v)? => attr_text(v)?,
            _ => Cow::Borrowed(""),
        },
        None => Cow::Borrowed(""),
    };
    let record_id: Cow<'_, str> = match get("EventRecordID") {
        Some(v) if is_int(v) => Cow::Owned(int_text(v).unwrap_or_default()),
        other => text_of(other)?,
    };

    let mut winlog = Obj::new();
    winlog.set("channel", V::R(channel.clone()));
    winlog.set("provider_name", V::R(provider_name.clone()));
    winlog.set("event_id", V::R(code.clone()));
    winlog.set("record_id", V::U(record_id.clone()));
    winlog.set("computer_name", V::R(computer.clone()));
    if let Some(guid) = provider.and_then(|p| get_member(p, "Guid")) {
        if truthy(guid)? {
            winlog.set("provider_guid", V::R(attr_text(guid)?));
        }
    }
    if let Some(q) = qualifiers {
        if !q.is_null() {
            winlog.set("qualifiers", V::S(str_of(q)?));
        }
    }
    if let Some(version) = get("Version") {
        if !version.is_null() {
            if let Some(v) = winlog_int(version)? {
                winlog.set("version", V::I(v));
            }
        }
    }
    if let Some(task) = get("Task") {
        if !task.is_null() {
            winlog.set("task", V::R(str_of(task)?));
        }
    }
    if let Some(opcode) = get("Opcode") {
        if !opcode.is_null() {
            winlog.set("opcode", V::R(str_of(opcode)?));
        }
    }
    if let Some(J::Str(keywords)) = get("Keywords") {
        if !keywords.is_empty() {
            let mut names: Vec<V> = keyword_bits(keywords)?.into_iter().map(V::K).collect();
            names.push(V::R(keywords.clone()));
            winlog.set("keywords", V::L(names));
        }
    }
    if let Some(correlation) = get("Correlation") {
        if truthy(correlation)? {
            if let Some(attrs) = attributes(Some(correlation)) {
                for (name, key) in [("ActivityID", "activity_id"),
                                    ("RelatedActivityID", "related_activity_id")] {
                    if let Some(v) = get_member(attrs, name) {
                        if truthy(v)? {
                            winlog.set(key, V::S(attr_text(v)?));
                        }
                    }
                }
            }
        }
    }
    if let Some(execution) = attributes(get("Execution")) {
        if !execution.is_empty() {
            // the reference's fast path (non-negative ints) and its _int agree: one rule
            let pid = get_member(execution, "ProcessID").map(winlog_int).transpose()?.flatten();
            let tid = get_member(execution, "ThreadID").map(winlog_int).transpose()?.flatten();
            let mut process = Obj::new();
            if let Some(pid) = pid {
                process.set("pid", V::I(pid));
            }
            if let Some(tid) = tid {
                let mut thread = Obj::new();
                thread.set("id", V::I(tid));
                process.set("thread", V::D(thread));
            }
            if !process.is_empty() {
                winlog.set("process", V::D(process));
            }
        }
    }
    if let Some(security) = get("Security") {
        if truthy(security)? {
            if let Some(sid) = attributes(Some(security)).and_then(|a| get_member(a, "UserID")) {
                if truthy(sid)? {
                    let mut user = Obj::new();
                    user.set("identifier", V::R(attr_text(sid)?));
                    winlog.set("user", V::D(user));
                }
            }
        }
    }
    let level: Option<Cow<'static, str>> = match get("Level") {
        None | Some(J::Null) => None,
        Some(J::Int(i)) => Some(level_name(*i)),
        Some(J::UInt(u)) => Some(Cow::Owned(u.to_string())),
        Some(J::Float(_)) => return Err(Fallback),
        Some(J::Str(s)) => winlog_int_str(s)?.map(level_name),
        Some(_) => None,
    };

    let event_data = remove(&mut root, "EventData");
    let has_event_data = !matches!(event_data, None | Some(J::Null));
    let mut data = match event_data {
        Some(section) if !section.is_null() => event_data_fields(section)?,
        _ => Vec::new(),
    };
    if !has_event_data || root_len > 3 {
        if let Some(node) = get_member(&root, "UserData") {
            if !node.is_null() {
                if let Some(user_data) = user_data_fields(node)? {
                    winlog.set("user_data", V::J(user_data));
                    if let J::Obj(o) = node {
                        flatten_user_data(o, &mut data)?;
                    }
                    remove(&mut data, "xml_name");
                }
            }
        }
        if let Some(errors @ J::Obj(_)) = get_member(&root, "ProcessingErrorData") {
            for (key, value) in event_data_fields(errors.clone())? {
                set_default(&mut data, key, value);
            }
        }
    }

    if !data.is_empty() {
        // its place in winlog; the caller puts the section there after the enrichment
        winlog.set("event_data", V::K(""));
    }
    let mut event = Obj::new();
    let mut event_fields = Obj::new();
    event_fields.set("kind", V::K("event"));
    event_fields.set("module", V::K(MODULE));
    // filled in by the caller, from its cache per channel
    event_fields.set("dataset", V::K(""));
    event_fields.set("code", V::R(code.clone()));
    event_fields.set("provider", V::R(provider_name.clone()));
    // their places; the caller fills them in
    event_fields.set("id", V::K(""));
    event_fields.set("original", V::K(""));
    event.set("@timestamp", V::U(timestamp.clone()));
    event.set("event", V::D(event_fields));
    event.set("winlog", V::D(winlog));
    if !computer.is_empty() {
        let mut host = Obj::new();
        host.set("name", V::R(computer.clone()));
        event.set("host", V::D(host));
    }
    if let Some(level) = level {
        let mut log = Obj::new();
        log.set("level", V::S(level));
        event.set("log", V::D(log));
    }
    if let Some(J::Obj(rendering)) = get_member(&root, "RenderingInfo") {
        apply_rendering(&mut event, rendering)?;
    }
    Ok(Base { event, data, code, provider_name, computer, channel, record_id, timestamp })
}

fn get_member<'m, 'a>(members: &'m Members<'a>, key: &str) -> Option<&'m J<'a>> {
    get(members, key)
}

fn level_name(level: i64) -> Cow<'static, str> {
    if (0..6).contains(&level) {
        Cow::Borrowed(LEVELS[level as usize])
    } else {
        Cow::Owned(level.to_string())
    }
}

/// `_apply_rendering`
fn apply_rendering<'a>(event: &mut Obj<'a>, rendering: &Members<'a>) -> R<()> {
    if let Some(J::Str(message)) = get(rendering, "Message") {
        if !message.is_empty() {
            event.set("message", V::S(message.clone()));
        }
    }
    for (key, target) in [("Task", "task"), ("Opcode", "opcode")] {
        if let Some(J::Str(value)) = get(rendering, key) {
            if !value.is_empty() {
                event.sub("winlog").set(target, V::S(value.clone()));
            }
        }
    }
    if let Some(J::Obj(keywords)) = get(rendering, "Keywords") {
        match get(keywords, "Keyword") {
            Some(J::Str(name)) => {
                event.sub("winlog").set("keywords", V::L(vec![V::S(name.clone())]));
            }
            Some(J::Arr(names)) => {
                let names = names.iter().map(|n| match n {
                    J::Str(s) => Ok(V::S(s.clone())),
                    _ => Err(Fallback),
                }).collect::<R<Vec<V>>>()?;
                event.sub("winlog").set("keywords", V::L(names));
            }
            _ => {}
        }
    }
    if let Some(J::Str(level)) = get(rendering, "Level") {
        if !level.is_empty() {
            let mut log = Obj::new();
            log.set("level", V::S(Cow::Owned(py_lower(level)?)));
            event.set("log", V::D(log));
        }
    }
    Ok(())
}
