"""Community ID v1 flow hashes (https://github.com/corelight/community-id-spec).

The same connection gets the same ``network.community_id`` in govsoc, Zeek,
Suricata and Elastic, so events can be joined across tools.
"""

from __future__ import annotations

import struct
from binascii import b2a_base64
from hashlib import sha1

# seed, addresses, protocol, padding, ports: one pack per address family
_WITH_PORTS = {4: struct.Struct("!H4s4sBxHH").pack, 16: struct.Struct("!H16s16sBxHH").pack}

# ICMP types with a counterpart: the pair is hashed like ports, so request and
# reply land on one id (per the specification's table)
_ICMP4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6 = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
          139: 140, 140: 139, 144: 145, 145: 144}


def community_id(src: bytes, sport: int, dst: bytes, dport: int, proto: int,
                 seed: int = 0) -> str:
    """``1:<base64 sha1>`` of the flow tuple; for ICMP pass (type, code) as ports."""
    one_way = False
    if proto in (1, 58):
        table = _ICMP4 if proto == 1 else _ICMP6
        counterpart = table.get(sport)
        if counterpart is None:
            one_way = True  # (type, code) stand in for the ports
        else:
            dport = counterpart
    # one-way ICMP messages keep their direction, as the specification says
    if not one_way and (src, sport) > (dst, dport):
        src, sport, dst, dport = dst, dport, src, sport
    if proto in (1, 6, 17, 58, 132):
        data = _WITH_PORTS[len(src)](seed, src, dst, proto, sport, dport)
    else:
        data = struct.pack("!H", seed) + src + dst + struct.pack("!BB", proto, 0)
    digest = sha1(data, usedforsecurity=False).digest()
    return "1:" + b2a_base64(digest, newline=False).decode("ascii")
