"""auth.log / secure lines → system.auth events with the documented actions."""

import collections
import io

import pytest

from collectors.authlog import AuthLogParser
from collectors.lines import read_lines
from collectors.textlog import line_batches
from govsoc.events import validate_event
from tests.conftest import corpus_path


def parse(text):
    lines = list(read_lines(io.BytesIO(text.encode() + b"\n")))
    batches = list(line_batches(lines, AuthLogParser(), "test", "auth.log"))
    assert not batches[0].rejected, batches[0].rejected
    return validate_event(batches[0].events[0])


def test_ssh_accepted():
    e = parse("Mar  3 10:00:00 web1 sshd[811]: Accepted publickey for deploy from "
              "203.0.113.7 port 50122 ssh2: RSA SHA256:abc")
    assert e["event"]["dataset"] == "system.auth" and e["event"]["module"] == "system"
    assert e["event"]["action"] == "ssh_login" and e["event"]["outcome"] == "success"
    assert "authentication" in e["event"]["category"]
    assert e["user"]["name"] == "deploy"
    assert e["source"] == {"address": "203.0.113.7", "ip": "203.0.113.7", "port": 50122}
    assert e["process"] == {"name": "sshd", "pid": 811}
    assert e["host"]["hostname"] == "web1"
    assert e["event"]["original"].startswith("Mar  3 10:00:00 web1 sshd[811]")


@pytest.mark.parametrize(("line", "user", "ip"), [
    ("sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2", "root", "1.2.3.4"),
    ("sshd[1]: Failed password for invalid user admin from 2001:db8::1 port 22 ssh2",
     "admin", "2001:db8::1"),
    ("sshd[1]: Failed none for invalid user  from 5.6.7.8 port 22 ssh2", None, "5.6.7.8"),
])
def test_ssh_failed(line, user, ip):
    e = parse(f"Dec 10 06:55:46 LabSZ {line}")
    assert e["event"]["action"] == "ssh_login_failed"
    assert e["event"]["outcome"] == "failure"
    assert e.get("user", {}).get("name") == user
    assert e["source"]["ip"] == ip


def test_invalid_user_and_pam_failure():
    e = parse("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
    assert (e["event"]["action"], e["user"]["name"], e["source"]["ip"]) == (
        "ssh_invalid_user", "webmaster", "173.234.31.186")
    e = parse("Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= "
              "uid=0 euid=0 tty=NODEVssh ruser= rhost=220-135-151-1.hinet-ip.hinet.net  user=root")
    assert e["event"]["action"] == "authentication_failure"
    assert e["user"]["name"] == "root"
    assert e["source"]["domain"] == "220-135-151-1.hinet-ip.hinet.net"


def test_sudo_and_failed_sudo():
    e = parse("Mar  3 10:00:00 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
              "COMMAND=/usr/bin/systemctl restart nginx")
    assert e["event"]["action"] == "sudo" and e["event"]["outcome"] == "success"
    assert e["user"]["name"] == "alice" and e["user"]["effective"]["name"] == "root"
    assert e["process"]["command_line"] == "/usr/bin/systemctl restart nginx"
    e = parse("Mar  3 10:00:00 web1 sudo:   mallory : user NOT in sudoers ; TTY=pts/1 ; "
              "PWD=/tmp ; USER=root ; COMMAND=/bin/bash")
    assert e["event"]["action"] == "sudo_failed" and e["event"]["outcome"] == "failure"
    assert e["event"]["reason"] == "user NOT in sudoers"
    e = parse("Mar  3 10:00:00 web1 sudo:   mallory : 3 incorrect password attempts ; "
              "TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash")
    assert e["event"]["action"] == "sudo_failed"


def test_user_and_group_management():
    e = parse("Mar  3 10:00:00 web1 useradd[900]: new user: name=backdoor, UID=1001, GID=1001, "
              "home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0")
    assert e["event"]["action"] == "useradd"
    assert e["event"]["category"] == ["iam"] and e["event"]["type"] == ["user", "creation"]
    assert e["user"]["name"] == "backdoor" and e["user"]["id"] == "1001"
    e = parse("Mar  3 10:00:00 web1 groupadd[899]: new group: name=backdoor, GID=1001")
    assert e["event"]["action"] == "groupadd" and e["group"] == {"name": "backdoor", "id": "1001"}
    e = parse("Mar  3 10:00:00 web1 usermod[901]: add 'backdoor' to group 'sudo'")
    assert e["event"]["action"] == "usermod" and e["group"]["name"] == "sudo"
    e = parse("Mar  3 10:00:00 web1 userdel[902]: delete user 'backdoor'")
    assert e["event"]["action"] == "userdel" and e["user"]["name"] == "backdoor"


def test_su_and_sessions():
    e = parse("Mar  3 10:00:00 web1 su[5]: FAILED su for root by alice")
    assert e["event"]["action"] == "su_failed" and e["user"]["name"] == "alice"
    e = parse("Mar  3 10:00:00 web1 sshd[5]: pam_unix(sshd:session): session opened for user "
              "bob by (uid=0)")
    assert e["event"]["action"] == "session_opened" and e["user"]["name"] == "bob"
    e = parse("Mar  3 10:00:00 web1 sshd[5]: message repeated 3 times: [ Failed password for "
              "root from 1.2.3.4 port 22 ssh2]")
    assert e["event"]["action"] == "ssh_login_failed" and "repeated:3" in e["tags"]


def test_unrecognised_auth_line_is_still_an_event():
    e = parse("Mar  3 10:00:00 web1 sshd[5]: Server listening on 0.0.0.0 port 22.")
    assert e["event"]["dataset"] == "system.auth" and "action" not in e["event"]


@pytest.mark.corpus
def test_loghub_openssh_every_line_parsed():
    path = corpus_path("logs", "loghub", "OpenSSH", "OpenSSH_2k.log")
    counts: dict[str, int] = {}
    events = []
    with open(path, "rb") as fh:
        for batch in line_batches(read_lines(fh), AuthLogParser(), str(path), str(path),
                                  counters=counts):
            events += batch.events
    assert counts["lines"] == 2000 and counts["events"] == 2000 and counts["rejected"] == 0
    actions = collections.Counter(e["event"].get("action") for e in events)
    failed_password = [e for e in events if "Failed password" in e["message"]]
    # the sample's SOURCE.md counts 520 "Failed password" and 113 "Invalid user" lines
    assert len(failed_password) == 520
    assert all(e["event"]["action"] == "ssh_login_failed" and e["source"].get("ip")
               for e in failed_password)
    assert actions["ssh_invalid_user"] == 113
    for e in events:
        validate_event(e)
