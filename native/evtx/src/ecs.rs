//! The ECS enrichment per provider and event id: `collectors.windows.ecs.enrich`.
//! Every handler reads the data section and writes ECS fields, as the
//! reference's handlers do, in the same order of decisions.

use std::borrow::Cow;

use crate::json::{get, Members, J};

use crate::pytext::{basename, ecs_int, py_ip, py_lower, py_split_first_word, py_splitlines,
                    py_strip, R};
use crate::tree::{Obj, V};

type Data<'a> = Members<'a>;

const EMPTY: [&str; 3] = ["", "-", "{00000000-0000-0000-0000-000000000000}"];

/// `_v`: the data value when it carries information.
fn v<'m>(data: &'m Data<'_>, name: &str) -> Option<&'m str> {
    match get(data, name) {
        Some(J::Str(s)) if !EMPTY.contains(&s.as_ref()) => Some(s),
        _ => None,
    }
}

fn ip(value: Option<&str>) -> R<Option<String>> {
    match value {
        Some(s) => py_ip(s),
        None => Ok(None),
    }
}

fn port(value: Option<&str>) -> R<Option<i64>> {
    Ok(ecs_int(value)?.filter(|p| 0 < *p && *p < 65536))
}

fn s(value: &str) -> V<'static> {
    V::S(Cow::Owned(value.to_owned()))
}

fn list(items: &[&'static str]) -> V<'static> {
    V::L(items.iter().map(|i| V::K(i)).collect())
}

type Category = (&'static [&'static str], &'static [&'static str], &'static str);

fn categorise(event: &mut Obj<'_>, known: &Category, outcome: Option<&'static str>) {
    let fields = event.sub("event");
    if !known.0.is_empty() {
        fields.set("category", list(known.0));
    }
    if !known.1.is_empty() {
        fields.set("type", list(known.1));
    }
    fields.set("action", V::K(known.2));
    if let Some(outcome) = outcome {
        fields.set("outcome", V::K(outcome));
    }
}

/// `parse_hashes` → (md5/sha1/sha256, imphash)
fn hash_fields(text: &str) -> R<(Obj<'static>, Option<String>)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for part in text.split(',') {
        let Some((name, digest)) = part.split_once('=') else { continue };
        let digest = py_lower(py_strip(digest))?;
        if !digest.is_empty() && digest.chars().any(|c| c != '0') {
            let name = py_lower(py_strip(name))?;
            match found.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = digest,
                None => found.push((name, digest)),
            }
        }
    }
    let get = |k: &str| found.iter().find(|(n, _)| n == k).map(|(_, d)| d.clone());
    let mut known = Obj::new();
    for (key, name) in [("md5", "md5"), ("sha1", "sha1"), ("sha256", "sha256")] {
        if let Some(d) = get(name) {
            known.set(key, V::S(Cow::Owned(d)));
        }
    }
    Ok((known, get("imphash")))
}

fn put_hashes(node: &mut Obj<'_>, text: Option<&str>) -> R<()> {
    let Some(text) = text else { return Ok(()) };
    let (known, imphash) = hash_fields(text)?;
    if !known.is_empty() {
        node.set("hash", V::D(known));
    }
    if let Some(imphash) = imphash {
        node.sub("pe").set("imphash", V::S(Cow::Owned(imphash)));
    }
    Ok(())
}

fn split_account(value: &str) -> (Option<&str>, &str) {
    match value.split_once('\\') {
        Some((domain, name)) => (if domain.is_empty() { None } else { Some(domain) }, name),
        None => (None, value),
    }
}

fn set_user(event: &mut Obj<'_>, name: Option<&str>, domain: Option<&str>, sid: Option<&str>,
            key: &'static str) {
    if name.is_none() && sid.is_none() {
        return;
    }
    let user = event.sub("user");
    let node = if key == "user" { user } else { user.sub(key) };
    if let Some(name) = name {
        node.set("name", s(name));
    }
    if let Some(domain) = domain {
        node.set("domain", s(domain));
    }
    if let Some(sid) = sid {
        node.set("id", s(sid));
    }
}

fn set_account(event: &mut Obj<'_>, value: Option<&str>) {
    if let Some(value) = value {
        let (domain, name) = split_account(value);
        set_user(event, Some(name), domain, None, "user");
    }
}

fn subject(event: &mut Obj<'_>, data: &Data<'_>) {
    set_user(event, v(data, "SubjectUserName"), v(data, "SubjectDomainName"),
             v(data, "SubjectUserSid"), "user");
}

fn target_user(event: &mut Obj<'_>, data: &Data<'_>, key: &'static str) {
    set_user(event, v(data, "TargetUserName"), v(data, "TargetDomainName"),
             v(data, "TargetUserSid").or_else(|| v(data, "TargetSid")), key);
}

fn file(event: &mut Obj<'_>, path: Option<&str>) -> R<()> {
    let Some(path) = path else { return Ok(()) };
    let node = event.sub("file");
    node.set("path", s(path));
    let name = basename(path);
    node.set("name", s(name));
    if name.len() < path.len() {
        node.set("directory", s(&path[..path.len() - name.len() - 1]));
    }
    if let Some(dot) = name.rfind('.') {
        // 0 < dot < len(name) - 1, in characters; the dot is one byte
        let after = &name[dot + 1..];
        if dot > 0 && !after.is_empty() {
            node.set("extension", V::S(Cow::Owned(py_lower(after)?)));
        }
    }
    Ok(())
}

fn process<'e, 'a>(event: &'e mut Obj<'a>, executable: Option<&str>, pid: Option<i64>)
                  -> &'e mut Obj<'a> {
    let node = event.sub("process");
    if let Some(executable) = executable {
        node.set("executable", s(executable));
        node.set("name", s(basename(executable)));
    }
    if let Some(pid) = pid {
        node.set("pid", V::I(pid));
    }
    node
}

fn source(event: &mut Obj<'_>, data: &Data<'_>, ip_field: &str, port_field: &str,
          host_field: Option<&str>) -> R<()> {
    if get(data, ip_field).is_none() && host_field.is_none_or(|h| get(data, h).is_none()) {
        return Ok(());
    }
    let address = ip(v(data, ip_field))?;
    let port = port(v(data, port_field))?;
    let host = host_field.and_then(|h| v(data, h));
    if address.is_none() && port.is_none() && host.is_none() {
        return Ok(());
    }
    let node = event.sub("source");
    if let Some(address) = address {
        node.set("ip", V::S(Cow::Owned(address)));
    }
    if let Some(port) = port {
        node.set("port", V::I(port));
    }
    if let Some(host) = host {
        node.set("domain", s(host));
    }
    Ok(())
}

// --- Sysmon ----------------------------------------------------------------------

fn sysmon_known(code: &str) -> Option<Category> {
    Some(match code {
        "1" => (&["process"], &["start"], "Process creation"),
        "2" => (&["file"], &["change"], "A process changed a file creation time"),
        "3" => (&["network"], &["start", "connection", "protocol"], "Network connection"),
        "4" => (&["process"], &["change"], "Sysmon service state changed"),
        "5" => (&["process"], &["end"], "Process terminated"),
        "6" => (&["driver"], &["start"], "Driver loaded"),
        "7" => (&["process"], &["change"], "Image loaded"),
        "8" => (&["process"], &["change"], "CreateRemoteThread"),
        "9" => (&["process"], &["access"], "RawAccessRead"),
        "10" => (&["process"], &["access"], "ProcessAccess"),
        "11" => (&["file"], &["creation"], "FileCreate"),
        "12" => (&["configuration", "registry"], &["change"],
                 "RegistryEvent (Object create and delete)"),
        "13" => (&["configuration", "registry"], &["change"], "RegistryEvent (Value Set)"),
        "14" => (&["configuration", "registry"], &["change"],
                 "RegistryEvent (Key and Value Rename)"),
        "15" => (&["file"], &["access"], "FileCreateStreamHash"),
        "16" => (&["configuration"], &["change"], "ServiceConfigurationChange"),
        "17" => (&["file"], &["creation"], "PipeEvent (Pipe Created)"),
        "18" => (&["file"], &["access"], "PipeEvent (Pipe Connected)"),
        "19" => (&["process"], &["info"], "WmiEvent (WmiEventFilter activity detected)"),
        "20" => (&["process"], &["change"], "WmiEvent (WmiEventConsumer activity detected)"),
        "21" => (&["process"], &["access"],
                 "WmiEvent (WmiEventConsumerToFilter activity detected)"),
        "22" => (&["network"], &["connection", "protocol", "info"], "DNSEvent (DNS query)"),
        "23" => (&["file"], &["deletion"], "FileDelete (File Delete archived)"),
        "24" => (&[], &["change"], "ClipboardChange (New content in the clipboard)"),
        "25" => (&["process"], &["change"], "ProcessTampering (Process image change)"),
        "26" => (&["file"], &["deletion"], "FileDeleteDetected (File Delete logged)"),
        "27" => (&["file"], &["creation"], "FileBlockExecutable"),
        "28" => (&["file"], &["deletion"], "FileBlockShredding"),
        "29" => (&["file"], &["creation"], "FileExecutableDetected"),
        "255" => (&["process"], &[], "Error"),
        _ => return None,
    })
}

fn sysmon(event: &mut Obj<'_>, data: &Data<'_>, code: &str) -> R<()> {
    if let Some(known) = sysmon_known(code) {
        let failed = code == "27" || code == "255";
        categorise(event, &known, if failed { Some("failure") } else { None });
    }
    if let Some(rule) = v(data, "RuleName") {
        let mut node = Obj::new();
        node.set("name", s(rule));
        event.set("rule", V::D(node));
    }
    let mut proc = Obj::new();
    let (image, pid, guid, account);
    if code == "8" || code == "10" {
        image = v(data, "SourceImage");
        pid = ecs_int(v(data, "SourceProcessId"))?;
        guid = v(data, "SourceProcessGuid").or_else(|| v(data, "SourceProcessGUID"));
        if let Some(thread) = ecs_int(v(data, "SourceThreadId"))? {
            let mut node = Obj::new();
            node.set("id", V::I(thread));
            proc.set("thread", V::D(node));
        }
        account = v(data, "SourceUser");
    } else {
        image = v(data, "Image").or_else(|| v(data, "Destination"));
        pid = ecs_int(v(data, "ProcessId"))?;
        guid = v(data, "ProcessGuid");
        account = v(data, "User");
    }
    if let Some(image) = image {
        proc.set("executable", s(image));
        proc.set("name", s(basename(image)));
    }
    if let Some(pid) = pid {
        proc.set("pid", V::I(pid));
    }
    if let Some(guid) = guid {
        proc.set("entity_id", s(guid));
    }
    // the reference attaches the process object only when it holds something;
    // details written to an unattached one are lost there, so they are here
    let attached = !proc.is_empty();
    if attached {
        // its place among the event's fields; filled in after the details
        event.set("process", V::D(Obj::new()));
    }
    set_account(event, account);
    match code {
        "1" => sysmon_process_create(event, &mut proc, data)?,
        "2" | "11" | "15" | "23" | "26" | "27" | "28" | "29" => {
            file(event, v(data, "TargetFilename"))?;
            if let Some(hashes) = v(data, "Hashes").or_else(|| v(data, "Hash")) {
                put_hashes(event.sub("file"), Some(hashes))?;
            }
        }
        "3" => sysmon_network(event, data)?,
        "6" => {
            file(event, v(data, "ImageLoaded"))?;
            if let Some(hashes) = v(data, "Hashes") {
                put_hashes(event.sub("file"), Some(hashes))?;
            }
        }
        "7" => {
            if let Some(path) = v(data, "ImageLoaded") {
                let mut dll = Obj::new();
                dll.set("path", s(path));
                dll.set("name", s(basename(path)));
                put_hashes(&mut dll, v(data, "Hashes"))?;
                if let Some(original) = v(data, "OriginalFileName") {
                    dll.sub("pe").set("original_file_name", s(original));
                }
                event.set("dll", V::D(dll));
            }
        }
        "9" => {
            if let Some(device) = v(data, "Device") {
                let mut node = Obj::new();
                node.set("path", s(device));
                event.set("file", V::D(node));
            }
        }
        "12" | "13" | "14" => sysmon_registry(event, data, code)?,
        "17" | "18" => {
            if let Some(pipe) = v(data, "PipeName") {
                let mut node = Obj::new();
                node.set("name", s(pipe));
                event.set("file", V::D(node));
            }
        }
        "22" => sysmon_dns(event, data)?,
        "24" | "25" => {
            if code == "25" {
                if let Some(kind) = v(data, "Type") {
                    event.set("message", s(kind));
                }
            }
            if let Some(hashes) = v(data, "Hashes") {
                if attached {
                    put_hashes(&mut proc, Some(hashes))?;
                } else {
                    put_hashes(event.sub("process"), Some(hashes))?;
                }
            }
        }
        _ => {}
    }
    if attached {
        event.set("process", V::D(proc));
    }
    Ok(())
}

fn copy(data: &Data<'_>, node: &mut Obj<'_>, pairs: &[(&'static str, &str)]) {
    for (key, name) in pairs {
        if let Some(value) = v(data, name) {
            node.set(key, s(value));
        }
    }
}

fn sysmon_process_create(event: &mut Obj<'_>, proc: &mut Obj<'_>, data: &Data<'_>) -> R<()> {
    copy(data, proc, &[("command_line", "CommandLine"),
                       ("working_directory", "CurrentDirectory")]);
    put_hashes(proc, v(data, "Hashes"))?;
    let mut pe = Obj::new();
    copy(data, &mut pe, &[("original_file_name", "OriginalFileName"),
                          ("description", "Description"), ("product", "Product"),
                          ("company", "Company"), ("file_version", "FileVersion")]);
    if !pe.is_empty() {
        let node = proc.sub("pe");
        for (key, value) in pe.0 {
            node.set(key, value);
        }
    }
    let mut parent = Obj::new();
    copy(data, &mut parent, &[("executable", "ParentImage"),
                              ("entity_id", "ParentProcessGuid"),
                              ("command_line", "ParentCommandLine")]);
    if let Some(executable) = v(data, "ParentImage") {
        parent.set("name", s(basename(executable)));
    }
    if let Some(pid) = ecs_int(v(data, "ParentProcessId"))? {
        parent.set("pid", V::I(pid));
    }
    if !parent.is_empty() {
        proc.set("parent", V::D(parent));
    }
    if let Some(logon_id) = v(data, "LogonId") {
        event.sub("winlog").sub("logon").set("id", s(logon_id));
    }
    Ok(())
}

fn sysmon_network(event: &mut Obj<'_>, data: &Data<'_>) -> R<()> {
    source(event, data, "SourceIp", "SourcePort", Some("SourceHostname"))?;
    let mut dest = Obj::new();
    if let Some(address) = ip(v(data, "DestinationIp"))? {
        dest.set("ip", V::S(Cow::Owned(address)));
    }
    if let Some(port) = port(v(data, "DestinationPort"))? {
        dest.set("port", V::I(port));
    }
    if let Some(host) = v(data, "DestinationHostname") {
        dest.set("domain", s(host));
    }
    if !dest.is_empty() {
        event.set("destination", V::D(dest));
    }
    let mut network = Obj::new();
    if let Some(transport) = v(data, "Protocol") {
        network.set("transport", V::S(Cow::Owned(py_lower(transport)?)));
    }
    if let Some(ipv6) = v(data, "SourceIsIpv6") {
        network.set("type", V::K(if ipv6 == "true" { "ipv6" } else { "ipv4" }));
    }
    if let Some(initiated) = v(data, "Initiated") {
        network.set("direction", V::K(if initiated == "true" { "egress" } else { "ingress" }));
    }
    if !network.is_empty() {
        event.set("network", V::D(network));
    }
    Ok(())
}

fn sysmon_registry(event: &mut Obj<'_>, data: &Data<'_>, code: &str) -> R<()> {
    let target = v(data, "TargetObject");
    let kind = v(data, "EventType");
    if let Some(kind) = kind {
        if kind.starts_with("Delete") {
            event.sub("event").set("type", list(&["deletion"]));
        } else if kind == "CreateKey" {
            event.sub("event").set("type", list(&["creation"]));
        }
    }
    let Some(target) = target else { return Ok(()) };
    let mut registry = Obj::new();
    registry.set("path", s(target));
    let (hive, rest) = target.split_once('\\').unwrap_or((target, ""));
    if !rest.is_empty() {
        registry.set("hive", s(hive));
        let names_value = code == "13"
            || matches!(kind, Some("SetValue" | "DeleteValue" | "CreateValue"));
        if names_value {
            let (key, value) = rest.rsplit_once('\\').unwrap_or(("", rest));
            registry.set("key", s(key));
            registry.set("value", s(value));
        } else {
            registry.set("key", s(rest));
        }
    }
    if code == "13" {
        if let Some(details) = v(data, "Details") {
            let mut data_type = "SZ";
            for (prefix, name) in [("DWORD", "SZ_DWORD"), ("QWORD", "SZ_QWORD"),
                                   ("Binary Data", "REG_BINARY")] {
                if details.starts_with(prefix) {
                    data_type = name;
                    break;
                }
            }
            let mut node = Obj::new();
            node.set("strings", V::L(vec![s(details)]));
            node.set("type", V::K(data_type));
            registry.set("data", V::D(node));
        }
    }
    event.set("registry", V::D(registry));
    Ok(())
}

fn dns_status(status: &str) -> Option<&'static str> {
    Some(match status {
        "0" => "NOERROR",
        "9001" => "FORMERR",
        "9002" => "SERVFAIL",
        "9003" => "NXDOMAIN",
        "9004" => "NOTIMP",
        "9005" => "REFUSED",
        "1460" => "TIMEOUT",
        "9501" => "NOERROR",
        _ => return None,
    })
}

fn dns_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "1" => "A",
        "2" => "NS",
        "5" => "CNAME",
        "6" => "SOA",
        "12" => "PTR",
        "15" => "MX",
        "16" => "TXT",
        "28" => "AAAA",
        "33" => "SRV",
        "65" => "HTTPS",
        _ => return None,
    })
}

fn sysmon_dns(event: &mut Obj<'_>, data: &Data<'_>) -> R<()> {
    let mut dns = Obj::new();
    dns.set("type", V::K("query"));
    if let Some(name) = v(data, "QueryName") {
        let mut question = Obj::new();
        question.set("name", s(name));
        dns.set("question", V::D(question));
    }
    if let Some(status) = v(data, "QueryStatus") {
        dns.set("response_code", match dns_status(status) {
            Some(code) => V::K(code),
            None => s(status),
        });
    }
    if let Some(results) = v(data, "QueryResults") {
        let mut answers = Vec::new();
        let mut resolved = Vec::new();
        for item in results.split(';') {
            let item = py_strip(item);
            if item.is_empty() {
                continue;
            }
            if let Some(rest) = item.strip_prefix("type:") {
                let parts = py_split_first_word(rest);
                if parts.len() == 2 {
                    let mut answer = Obj::new();
                    answer.set("type", match dns_type(parts[0]) {
                        Some(t) => V::K(t),
                        None => s(parts[0]),
                    });
                    answer.set("data", s(parts[1]));
                    answers.push(V::D(answer));
                }
                continue;
            }
            if let Some(address) = py_ip(item)? {
                let mut answer = Obj::new();
                answer.set("type", V::K(if address.contains(':') { "AAAA" } else { "A" }));
                answer.set("data", s(&address));
                answers.push(V::D(answer));
                resolved.push(V::S(Cow::Owned(address)));
            }
        }
        if !answers.is_empty() {
            dns.set("answers", V::L(answers));
        }
        if !resolved.is_empty() {
            dns.set("resolved_ip", V::L(resolved));
        }
    }
    event.set("dns", V::D(dns));
    Ok(())
}

// --- Security ----------------------------------------------------------------------

const AUTH: &[&str] = &["authentication"];
const IAM: &[&str] = &["iam"];
const USER_CHANGE: &[&str] = &["user", "change"];
const GROUP_CHANGE: &[&str] = &["group", "change"];
const IAM_CONFIG: &[&str] = &["iam", "configuration"];

fn security_known(code: &str) -> Option<Category> {
    Some(match code {
        "1100" => (&["process"], &["end"], "logging-service-shutdown"),
        "1102" => (&["iam"], &["admin", "change"], "audit-log-cleared"),
        "1104" => (&["iam"], &["admin"], "logging-full"),
        "4608" => (&["process"], &["start"], "windows-started-up"),
        "4616" => (&["configuration"], &["change"], "system-time-changed"),
        "4624" => (AUTH, &["start"], "logged-in"),
        "4625" => (AUTH, &["start"], "logon-failed"),
        "4627" => (AUTH, &["info"], "group-membership-information"),
        "4634" => (AUTH, &["end"], "logged-out"),
        "4647" => (AUTH, &["end"], "logged-out"),
        "4648" => (AUTH, &["start"], "logged-in-explicit"),
        "4656" => (&["file"], &["access"], "object-handle-requested"),
        "4657" => (&["configuration", "registry"], &["change"], "registry-value-modified"),
        "4661" => (&["iam"], &["access"], "object-handle-requested"),
        "4662" => (&["iam"], &["access"], "object-operation-performed"),
        "4663" => (&["file"], &["access"], "object-access-attempted"),
        "4672" => (IAM, &["admin"], "logged-in-special"),
        "4673" => (IAM, &["admin"], "privileged-service-called"),
        "4674" => (IAM, &["admin"], "privileged-operation"),
        "4688" => (&["process"], &["start"], "created-process"),
        "4689" => (&["process"], &["end"], "exited-process"),
        "4697" => (IAM_CONFIG, &["admin", "change"], "service-installed"),
        "4698" => (IAM_CONFIG, &["creation", "admin"], "scheduled-task-created"),
        "4699" => (IAM_CONFIG, &["deletion", "admin"], "scheduled-task-deleted"),
        "4700" => (IAM_CONFIG, &["change", "admin"], "scheduled-task-enabled"),
        "4701" => (IAM_CONFIG, &["change", "admin"], "scheduled-task-disabled"),
        "4702" => (IAM_CONFIG, &["change", "admin"], "scheduled-task-updated"),
        "4719" => (IAM_CONFIG, &["admin", "change"], "changed-audit-config"),
        "4720" => (IAM, &["user", "creation"], "added-user-account"),
        "4722" => (IAM, USER_CHANGE, "enabled-user-account"),
        "4723" => (IAM, USER_CHANGE, "changed-password"),
        "4724" => (IAM, USER_CHANGE, "reset-password"),
        "4725" => (IAM, USER_CHANGE, "disabled-user-account"),
        "4726" => (IAM, &["user", "deletion"], "deleted-user-account"),
        "4727" => (IAM, &["group", "creation"], "added-group-account"),
        "4728" => (IAM, GROUP_CHANGE, "added-member-to-group"),
        "4729" => (IAM, GROUP_CHANGE, "removed-member-from-group"),
        "4730" => (IAM, &["group", "deletion"], "deleted-group-account"),
        "4731" => (IAM, &["group", "creation"], "added-group-account"),
        "4732" => (IAM, GROUP_CHANGE, "added-member-to-group"),
        "4733" => (IAM, GROUP_CHANGE, "removed-member-from-group"),
        "4734" => (IAM, &["group", "deletion"], "deleted-group-account"),
        "4735" => (IAM, GROUP_CHANGE, "modified-group-account"),
        "4737" => (IAM, GROUP_CHANGE, "modified-group-account"),
        "4738" => (IAM, USER_CHANGE, "modified-user-account"),
        "4740" => (IAM, USER_CHANGE, "locked-out-user-account"),
        "4741" => (IAM, &["creation", "admin"], "added-computer-account"),
        "4742" => (IAM, &["change", "admin"], "changed-computer-account"),
        "4743" => (IAM, &["deletion", "admin"], "deleted-computer-account"),
        "4754" => (IAM, &["group", "creation"], "added-group-account"),
        "4755" => (IAM, GROUP_CHANGE, "modified-group-account"),
        "4756" => (IAM, GROUP_CHANGE, "added-member-to-group"),
        "4757" => (IAM, GROUP_CHANGE, "removed-member-from-group"),
        "4758" => (IAM, &["group", "deletion"], "deleted-group-account"),
        "4767" => (IAM, USER_CHANGE, "unlocked-user-account"),
        "4768" => (AUTH, &["start"], "kerberos-authentication-ticket-requested"),
        "4769" => (AUTH, &["start"], "kerberos-service-ticket-requested"),
        "4770" => (AUTH, &["start"], "kerberos-service-ticket-renewed"),
        "4771" => (AUTH, &["start"], "kerberos-preauth-failed"),
        "4776" => (AUTH, &["start"], "credential-validated"),
        "4778" => (AUTH, &["start"], "session-reconnected"),
        "4779" => (AUTH, &["end"], "session-disconnected"),
        "4781" => (IAM, USER_CHANGE, "renamed-user-account"),
        "4798" => (IAM, &["user", "info"], "group-membership-enumerated"),
        "4799" => (IAM, &["group", "info"], "user-member-enumerated"),
        "4964" => (AUTH, &["start"], "logged-in-special-group"),
        "5136" => (&["configuration"], &["change"], "directory-service-object-modified"),
        "5140" => (&["network", "file"], &["info", "access"], "network-share-object-accessed"),
        "5145" => (&["network", "file"], &["info", "access"],
                   "network-share-object-access-checked"),
        "5156" => (&["network"], &["connection", "allowed"],
                   "windows-firewall-connection-permitted"),
        "5157" => (&["network"], &["connection", "denied"],
                   "windows-firewall-connection-blocked"),
        _ => return None,
    })
}

const TARGET_IS_USER: &[&str] = &["4624", "4625", "4634", "4647", "4768", "4769", "4770",
                                  "4771", "4776", "4778", "4779", "4964"];
const USER_MANAGEMENT: &[&str] = &["4720", "4722", "4723", "4724", "4725", "4726", "4738",
                                   "4740", "4767", "4781", "4798"];
const GROUP_MANAGEMENT: &[&str] = &["4727", "4728", "4729", "4730", "4731", "4732", "4733",
                                    "4734", "4735", "4737", "4754", "4755", "4756", "4757",
                                    "4758", "4799"];
const KERBEROS: &[&str] = &["4768", "4769", "4770", "4771", "4776"];

pub fn logon_type(value: &str) -> Option<&'static str> {
    Some(match value {
        "0" => "System",
        "2" => "Interactive",
        "3" => "Network",
        "4" => "Batch",
        "5" => "Service",
        "7" => "Unlock",
        "8" => "NetworkCleartext",
        "9" => "NewCredentials",
        "10" => "RemoteInteractive",
        "11" => "CachedInteractive",
        "12" => "CachedRemoteInteractive",
        "13" => "CachedUnlock",
        _ => return None,
    })
}

fn security(event: &mut Obj<'_>, data: &Data<'_>, code: &str) -> R<()> {
    if let Some(known) = security_known(code) {
        categorise(event, &known, None);
    }
    let target_is_user = TARGET_IS_USER.contains(&code);
    if target_is_user {
        target_user(event, data, "user");
        if !event.contains("user") && KERBEROS.contains(&code) {
            set_user(event, v(data, "TargetUserName"), v(data, "TargetDomainName"), None,
                     "user");
        }
    } else {
        subject(event, data);
    }
    let logon_id = (if target_is_user { v(data, "TargetLogonId") } else { None })
        .or_else(|| v(data, "SubjectLogonId"));
    let logon_kind = v(data, "LogonType");
    if logon_id.is_some() || logon_kind.is_some() {
        let logon = event.sub("winlog").sub("logon");
        if let Some(id) = logon_id {
            logon.set("id", s(id));
        }
        if let Some(kind) = logon_kind {
            logon.set("type", match logon_type(kind) {
                Some(name) => V::K(name),
                None => s(kind),
            });
        }
    }
    source(event, data, "IpAddress", "IpPort",
           Some(if code == "4776" { "Workstation" } else { "WorkstationName" }))?;

    if code == "4688" {
        let proc = process(event, v(data, "NewProcessName"), ecs_int(v(data, "NewProcessId"))?);
        if let Some(command_line) = v(data, "CommandLine") {
            proc.set("command_line", s(command_line));
        }
        let mut parent = Obj::new();
        if let Some(exe) = v(data, "ParentProcessName") {
            parent.set("executable", s(exe));
            parent.set("name", s(basename(exe)));
        }
        if let Some(pid) = ecs_int(v(data, "ProcessId"))? {
            parent.set("pid", V::I(pid));
        }
        if !parent.is_empty() {
            proc.set("parent", V::D(parent));
        }
        if let Some(effective) = v(data, "TargetUserName") {
            set_user(event, Some(effective), v(data, "TargetDomainName"),
                     v(data, "TargetUserSid"), "effective");
        }
    } else if code == "5156" || code == "5157" {
        security_filtering(event, data)?;
    } else {
        let executable = v(data, "ProcessName");
        let pid = ecs_int(v(data, "ProcessId"))?;
        if executable.is_some() || pid.is_some() {
            let status = if code == "4689" { ecs_int(v(data, "Status"))? } else { None };
            let proc = process(event, executable, pid);
            if let Some(status) = status {
                proc.set("exit_code", V::I(status));
            }
        }
    }

    if code == "4648" {
        set_user(event, v(data, "TargetUserName"), v(data, "TargetDomainName"), None,
                 "effective");
        if let Some(server) = v(data, "TargetServerName") {
            event.sub("destination").set("domain", s(server));
        }
    } else if USER_MANAGEMENT.contains(&code) {
        target_user(event, data, "target");
    } else if GROUP_MANAGEMENT.contains(&code) {
        let mut group = Obj::new();
        for (key, name) in [("name", "TargetUserName"), ("domain", "TargetDomainName"),
                            ("id", "TargetSid")] {
            if let Some(value) = v(data, name) {
                group.set(key, s(value));
            }
        }
        if !group.is_empty() {
            event.set("group", V::D(group));
        }
        let member = v(data, "MemberName");
        let member_sid = v(data, "MemberSid");
        if member.is_some() || member_sid.is_some() {
            let name = member.map(member_name);
            set_user(event, name.as_deref(), None, member_sid, "target");
        }
    } else if matches!(code, "4697" | "4698" | "4699" | "4700" | "4701" | "4702") {
        if let Some(name) = v(data, "ServiceName").or_else(|| v(data, "TaskName")) {
            let mut service = Obj::new();
            service.set("name", s(name));
            if let Some(kind) = v(data, "ServiceType") {
                service.set("type", s(kind));
            }
            event.set("service", V::D(service));
        }
    } else if code == "4769" {
        if let Some(name) = v(data, "ServiceName") {
            let mut service = Obj::new();
            service.set("name", s(name));
            event.set("service", V::D(service));
        }
    } else if matches!(code, "4656" | "4663" | "4658" | "4660") {
        if let Some(object) = v(data, "ObjectName") {
            if v(data, "ObjectType") == Some("File") {
                file(event, Some(object))?;
            }
        }
    } else if code == "5140" || code == "5145" {
        if let Some(share) = v(data, "ShareName") {
            match v(data, "RelativeTargetName") {
                Some(target) => file(event, Some(&format!("{share}\\{target}")))?,
                None => file(event, Some(share))?,
            }
        }
    }

    if KERBEROS.contains(&code) {
        if let Some(result) = v(data, "Status") {
            let ok = ecs_int(Some(result))? == Some(0);
            event.sub("event").set("outcome", V::K(if ok { "success" } else { "failure" }));
        }
    }
    Ok(())
}

/// `CN=John Smith,OU=Staff,...` → `John Smith`
fn member_name(member: &str) -> String {
    let b = member.as_bytes();
    if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"cn=") {
        let find = |from: usize| member[from..].find(',').map(|i| i + from);
        let mut end = find(3);
        while let Some(e) = end {
            if e > 0 && b[e - 1] == b'\\' {
                end = find(e + 1);
            } else {
                break;
            }
        }
        let stop = end.unwrap_or(member.len());
        return member[3..stop].replace("\\,", ",");
    }
    member.to_owned()
}

fn security_filtering(event: &mut Obj<'_>, data: &Data<'_>) -> R<()> {
    source(event, data, "SourceAddress", "SourcePort", None)?;
    let mut dest = Obj::new();
    if let Some(address) = ip(v(data, "DestAddress"))? {
        dest.set("ip", V::S(Cow::Owned(address)));
    }
    if let Some(port) = port(v(data, "DestPort"))? {
        dest.set("port", V::I(port));
    }
    if !dest.is_empty() {
        event.set("destination", V::D(dest));
    }
    let mut network = Obj::new();
    if let Some(protocol) = v(data, "Protocol") {
        network.set("iana_number", s(protocol));
        let transport = match protocol {
            "1" => Some("icmp"),
            "6" => Some("tcp"),
            "17" => Some("udp"),
            "58" => Some("ipv6-icmp"),
            _ => None,
        };
        if let Some(transport) = transport {
            network.set("transport", V::K(transport));
        }
    }
    match v(data, "Direction") {
        Some("%%14592" | "Inbound") => network.set("direction", V::K("ingress")),
        Some("%%14593" | "Outbound") => network.set("direction", V::K("egress")),
        _ => {}
    }
    if !network.is_empty() {
        event.set("network", V::D(network));
    }
    let application = v(data, "Application");
    let pid = ecs_int(v(data, "ProcessID").or_else(|| v(data, "ProcessId")))?;
    if application.is_some() || pid.is_some() {
        process(event, application, pid);
    }
    Ok(())
}

// --- Event log service, Service Control Manager, PowerShell -----------------------

fn eventlog(event: &mut Obj<'_>, data: &Data<'_>, code: &str) {
    if code == "1102" || code == "104" {
        let action = if code == "1102" { "audit-log-cleared" } else { "log-cleared" };
        categorise(event, &(&["iam"], &["admin", "change"], action), None);
        subject(event, data);
        if !event.contains("user") {
            set_user(event, v(data, "SubjectUserName"), v(data, "SubjectDomainName"), None,
                     "user");
        }
    } else if code == "1100" {
        categorise(event, &(&["process"], &["end"], "logging-service-shutdown"), None);
    }
}

fn service_name(event: &mut Obj<'_>, data: &Data<'_>) {
    if let Some(name) = v(data, "param1") {
        let mut service = Obj::new();
        service.set("name", s(name));
        event.set("service", V::D(service));
    }
}

fn service_control_manager(event: &mut Obj<'_>, data: &Data<'_>, code: &str) {
    match code {
        "7045" => {
            categorise(event, &(&["iam", "configuration"], &["admin", "change"],
                                "service-installed"), None);
            let mut service = Obj::new();
            if let Some(name) = v(data, "ServiceName") {
                service.set("name", s(name));
            }
            if let Some(kind) = v(data, "ServiceType") {
                service.set("type", s(kind));
            }
            if !service.is_empty() {
                event.set("service", V::D(service));
            }
            set_account(event, v(data, "AccountName"));
        }
        "7036" | "7040" => {
            let action = if code == "7036" { "service-state-changed" }
                         else { "service-start-type-changed" };
            categorise(event, &(&["configuration"], &["change"], action), None);
            service_name(event, data);
        }
        "7030" | "7034" | "7031" | "7023" | "7024" => {
            let kind: &'static [&'static str] = if code != "7030" { &["end"] } else { &["info"] };
            categorise(event, &(&["process"], kind, "service-failed"), None);
            service_name(event, data);
        }
        _ => {}
    }
}

fn key_values(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in py_splitlines(text) {
        let line = py_strip(line);
        let split = line.split_once('=').or_else(|| line.split_once(':'));
        if let Some((key, value)) = split {
            if !key.is_empty() && !py_strip(key).contains(' ') {
                let key = py_strip(key);
                if !out.iter().any(|(k, _)| k == key) {
                    out.push((key.to_owned(), py_strip(value).to_owned()));
                }
            }
        }
    }
    out
}

fn powershell_context(event: &mut Obj<'_>, values: &[(String, String)]) {
    let get = |k: &str| values.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty());
    if let Some(host_application) = get("HostApplication").or_else(|| get("Host Application")) {
        event.sub("process").set("command_line", s(host_application));
    }
    if let Some(user) = get("UserId").or_else(|| get("User")) {
        if !event.contains("user") {
            set_account(event, Some(user));
        }
    }
}

fn powershell_operational(event: &mut Obj<'_>, data: &Data<'_>, code: &str) -> R<()> {
    let action = match code {
        "4103" => "Executing Pipeline",
        "4104" => "Execute a Remote Command",
        "4105" => "Starting Command",
        "4106" => "Stopping Command",
        _ => return Ok(()),
    };
    categorise(event, &(&["process"], &["info"], action), None);
    file(event, v(data, "Path"))?;
    if let Some(context) = v(data, "ContextInfo") {
        powershell_context(event, &key_values(context));
    }
    Ok(())
}

fn powershell_classic(event: &mut Obj<'_>, data: &Data<'_>, code: &str) {
    let known: Category = match code {
        "400" => (&["process"], &["start"], "Engine Lifecycle"),
        "403" => (&["process"], &["end"], "Engine Lifecycle"),
        "600" => (&["process"], &["info"], "Provider Lifecycle"),
        "800" => (&["process"], &["info"], "Pipeline Execution Details"),
        _ => return,
    };
    categorise(event, &known, None);
    let details = get(data, if code != "800" { "param3" } else { "param2" });
    if let Some(J::Str(details)) = details {
        powershell_context(event, &key_values(details));
    }
}

/// `enrich`: the keywords' outcome, then the provider's handler.
pub fn enrich(event: &mut Obj<'_>, data: &Data<'_>, provider_name: &str, code: &str) -> R<()> {
    let outcome = match event.get("winlog") {
        Some(V::D(winlog)) => match winlog.get("keywords") {
            Some(V::L(keywords)) => {
                let has = |name: &str| keywords.iter().any(|k| match k {
                    V::S(s) => s.as_ref() == name,
                    V::K(s) => *s == name,
                    _ => false,
                });
                if has("Audit Success") {
                    Some("success")
                } else if has("Audit Failure") {
                    Some("failure")
                } else {
                    None
                }
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(outcome) = outcome {
        event.sub("event").set("outcome", V::K(outcome));
    }
    match provider_name {
        "Microsoft-Windows-Sysmon" | "Linux-Sysmon" => sysmon(event, data, code)?,
        "Microsoft-Windows-Security-Auditing" => security(event, data, code)?,
        "Microsoft-Windows-Eventlog" | "Eventlog" => eventlog(event, data, code),
        "Service Control Manager" => service_control_manager(event, data, code),
        "Microsoft-Windows-PowerShell" => powershell_operational(event, data, code)?,
        "PowerShell" => powershell_classic(event, data, code),
        _ => {}
    }
    Ok(())
}
