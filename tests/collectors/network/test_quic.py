"""QUIC Initial packets: keys, decryption, CRYPTO reassembly and the events they give.

The vectors are the sample packets of RFC 9001 appendix A (QUIC version 1) and RFC
9369 appendix A (version 2). Packets for the other cases are protected here with the
``cryptography`` package the same way an endpoint does (the builder is checked
against the RFC's own protected packet first).
"""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from collectors.network.quic import (
    MAX_CRYPTO_BYTES,
    MAX_DECRYPT_FAILURES,
    QUIC_V1,
    QUIC_V2,
    SCHEDULES,
    QuicConnection,
    initial_keys,
    looks_like_quic,
    parse_long_header,
    unprotect,
    version_name,
)
from collectors.network.sensor import NetworkSensor

DCID = bytes.fromhex("8394c8f03e515708")

# RFC 9001 A.2 / RFC 9369 A.2: the client's CRYPTO frame (a ClientHello for
# example.com offering ALPN "alpn"), padded with PADDING frames to 1162 bytes
CLIENT_CRYPTO_FRAME = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff")
CLIENT_PAYLOAD = CLIENT_CRYPTO_FRAME + bytes(1162 - len(CLIENT_CRYPTO_FRAME))
CLIENT_HELLO = CLIENT_CRYPTO_FRAME[4:]  # the handshake message the frame carries

V1_CLIENT_INITIAL = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934")

# RFC 9001 A.3 / RFC 9369 A.3: the server's ACK and CRYPTO frames (a ServerHello
# choosing TLS_AES_128_GCM_SHA256 and TLS 1.3), connection ID f067a5502a4262b5
SERVER_PAYLOAD = bytes.fromhex(
    "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739"
    "88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94"
    "0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00"
    "020304")
V1_SERVER_INITIAL = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee")

V2_CLIENT_INITIAL = bytes.fromhex(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc")
V2_SERVER_INITIAL = bytes.fromhex(
    "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698"
    "baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17"
    "f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2"
    "c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8"
    "4bed8521e2e140")


# -- building protected packets --------------------------------------------------------------

def varint(value: int) -> bytes:
    for size, tag in ((1, 0x00), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * size - 2):
            raw = bytearray(value.to_bytes(size, "big"))
            raw[0] |= tag
            return bytes(raw)
    raise ValueError(value)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def protect(payload: bytes, *, version: int = QUIC_V1, dcid: bytes = DCID, scid: bytes = b"",
            key_dcid: bytes = DCID, server: bool = False, pn: int = 0, pn_len: int = 4,
            token: bytes = b"") -> bytes:
    """An Initial packet as an endpoint sends it (RFC 9001 section 5)."""
    keys = initial_keys(version, key_dcid)[1 if server else 0]
    first = 0xC0 | (SCHEDULES[version].initial << 4) | (pn_len - 1)
    length = pn_len + len(payload) + 16
    header = (bytes((first,)) + version.to_bytes(4, "big") + bytes((len(dcid),)) + dcid
              + bytes((len(scid),)) + scid + varint(len(token)) + token
              + (0x4000 | length).to_bytes(2, "big") + pn.to_bytes(pn_len, "big"))
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(keys.key).encrypt(nonce, payload, header)
    sample = sealed[4 - pn_len:20 - pn_len]
    mask = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor().update(sample)
    pn_offset = len(header) - pn_len
    out = bytearray(header + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        out[pn_offset + i] ^= mask[1 + i]
    return bytes(out)


def udp_frame(payload: bytes, *, from_client: bool = True, sport: int = 50000) -> bytes:
    client, server = ("10.0.0.5", sport), ("192.0.2.10", 443)
    src, dst = (client, server) if from_client else (server, client)
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1])
                 / Raw(payload))


def sense(datagrams: list[tuple[bool, bytes]]) -> tuple[NetworkSensor, list[dict]]:
    """Run (from client?, UDP payload) datagrams through a sensor; its QUIC events."""
    sensor = NetworkSensor("test-quic")
    for i, (from_client, payload) in enumerate(datagrams):
        sensor.packet(1_700_000_000.0 + i / 100, 1, udp_frame(payload, from_client=from_client))
    sensor.flush()
    return sensor, [e for e in sensor.events if e["event"]["dataset"] == "network.tls"]


# -- RFC vectors ------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "expected"), [
    (QUIC_V1, {"client": ("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
                          "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c",
                          "9f50449e04a0e810283a1e9933adedd2"),
               "server": ("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b",
                          "cf3a5331653c364c88f0f379b6067e37", "0ac1493ca1905853b0bba03e",
                          "c206b8d9b9f0f37644430b490eeaa314")}),
    (QUIC_V2, {"client": ("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
                          "8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f",
                          "45b95e15235d6f45a6b19cbcb0294ba9"),
               "server": ("0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1",
                          "82db637861d55e1d011f19ea71d5d2a7", "dd13c276499c0249d3310652",
                          "edf6d05c83121201b436e16877593c3a")}),
])
def test_initial_secrets_and_keys_match_the_rfc_vectors(version, expected):
    client, server = initial_keys(version, DCID)
    for keys, side in ((client, "client"), (server, "server")):
        assert (keys.secret.hex(), keys.key.hex(), keys.iv.hex(), keys.hp.hex()) == \
            expected[side]


@pytest.mark.parametrize(("version", "packet"), [(QUIC_V1, V1_CLIENT_INITIAL),
                                                 (QUIC_V2, V2_CLIENT_INITIAL)])
def test_rfc_client_initial_decrypts_to_its_client_hello(version, packet):
    assert len(packet) == 1200 and looks_like_quic(packet)
    hdr = parse_long_header(packet, 0)
    assert (hdr.version, hdr.kind, hdr.dcid, hdr.scid, hdr.end) == \
        (version, "initial", DCID, b"", 1200)
    number, payload = unprotect(initial_keys(version, DCID)[0], packet, 0, hdr, -1)
    assert number == 2
    assert payload == CLIENT_PAYLOAD

    conn = QuicConnection()
    conn.datagram(True, packet)
    assert conn.issues == []
    assert conn.client is not None
    assert conn.client.server_name == "example.com"
    assert conn.client.alpn == ["alpn"]
    assert conn.client.ciphers == [0x1301, 0x1302]
    assert conn.client_initial_dcid == DCID and conn.version == version


@pytest.mark.parametrize(("version", "client", "server"), [
    (QUIC_V1, V1_CLIENT_INITIAL, V1_SERVER_INITIAL),
    (QUIC_V2, V2_CLIENT_INITIAL, V2_SERVER_INITIAL)])
def test_rfc_server_initial_decrypts_with_keys_from_the_clients_connection_id(
        version, client, server):
    hdr = parse_long_header(server, 0)
    assert hdr.dcid == b"" and hdr.scid == bytes.fromhex("f067a5502a4262b5")
    number, payload = unprotect(initial_keys(version, DCID)[1], server, 0, hdr, -1)
    assert (number, payload) == (1, SERVER_PAYLOAD)

    conn = QuicConnection()
    conn.datagram(True, client)
    conn.datagram(False, server)
    assert conn.issues == []
    assert conn.server is not None
    assert conn.server.cipher == 0x1301 and conn.server.selected_version == 0x0304
    assert conn.fields() == {"version": version_name(version),
                             "client_initial_dcid": "8394c8f03e515708", "client_scid": "",
                             "server_scid": "f067a5502a4262b5"}


@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
def test_the_packet_builder_reproduces_the_rfc_protected_packets(version):
    # the builder the other tests use protects exactly as the RFC examples do
    client = V1_CLIENT_INITIAL if version == QUIC_V1 else V2_CLIENT_INITIAL
    server = V1_SERVER_INITIAL if version == QUIC_V1 else V2_SERVER_INITIAL
    assert protect(CLIENT_PAYLOAD, version=version, pn=2) == client
    assert protect(SERVER_PAYLOAD, version=version, dcid=b"",
                   scid=bytes.fromhex("f067a5502a4262b5"), server=True, pn=1, pn_len=2) == server


def test_version_names_follow_zeek():
    assert [version_name(v) for v in (1, 0x6B3343CF, 0xFF00001D, 0xFACEB002, 0x51303530)] == \
        ["1", "quicv2", "draft-29", "mvfst (faceb002)", "unknown-51303530"]


# -- the sensor: events -------------------------------------------------------------------------

def test_sensor_reports_a_quic_handshake_as_a_tls_event_with_quic_fields():
    sensor, events = sense([(True, V1_CLIENT_INITIAL), (False, V1_SERVER_INITIAL),
                            (True, b"\x40" + bytes(40))])  # the client's first 1-RTT packet
    assert len(events) == 1
    event = events[0]
    assert event["network"]["protocol"] == "quic"
    assert event["network"]["transport"] == "udp"
    tls = event["tls"]
    assert tls["client"]["server_name"] == "example.com"
    assert event["destination"]["domain"] == "example.com"
    assert tls["client"]["alpn"] == ["alpn"]
    assert tls["client"]["ja4"].startswith("q13d0211an_")  # q: QUIC (JA4 specification)
    assert len(tls["client"]["ja3"]) == 32 and len(tls["server"]["ja3s"]) == 32
    assert tls["cipher"] == "TLS_AES_128_GCM_SHA256"
    assert (tls["version_protocol"], tls["version"]) == ("tls", "1.3")
    assert tls["established"] is True
    assert event["quic"] == {"version": "1", "client_initial_dcid": "8394c8f03e515708",
                             "client_scid": "", "server_scid": "f067a5502a4262b5"}
    conn = [e for e in sensor.events if e["event"]["dataset"] == "network.connection"]
    assert not sensor.problems and not sensor.rejected
    assert not conn or conn[0]["network"]["protocol"] == "quic"


def test_client_hello_split_over_two_initials_with_crypto_frames_out_of_order():
    hello = CLIENT_HELLO
    a, b, c = hello[:70], hello[70:150], hello[150:]
    # first datagram: the tail and the head, in that order; second: the middle
    first = protect(crypto_frame(150, c) + crypto_frame(0, a) + bytes(1000), pn=0,
                    scid=b"\x11\x22")
    second = protect(b"\x01" + crypto_frame(70, b) + bytes(1000), pn=1, scid=b"\x11\x22")
    conn = QuicConnection()
    conn.datagram(True, first)
    assert conn.client is None and not conn.issues  # a gap between offsets 70 and 150
    conn.datagram(True, second)
    assert conn.client is not None and conn.client.server_name == "example.com"
    assert conn.issues == []

    _sensor, events = sense([(True, second), (True, first)])  # the packets reordered too
    assert [e["tls"]["client"]["server_name"] for e in events] == ["example.com"]
    assert events[0]["quic"]["client_scid"] == "1122"


def test_retransmitted_and_overlapping_crypto_data_is_read_once():
    hello = CLIENT_HELLO
    packet = protect(crypto_frame(0, hello[:100]) + crypto_frame(50, hello[50:180])
                     + crypto_frame(0, hello[:30]) + crypto_frame(180, hello[180:])
                     + bytes(900))
    conn = QuicConnection()
    conn.datagram(True, packet)
    assert conn.client is not None and conn.client.alpn == ["alpn"] and not conn.issues


def test_coalesced_initial_and_handshake_packets_in_one_datagram():
    # a server's datagram: its Initial (ServerHello) and a Handshake packet after it
    handshake = bytes((0xE0 | 0x01,)) + (1).to_bytes(4, "big") + b"\x00\x08" + \
        bytes.fromhex("f067a5502a4262b5") + (0x4000 | 40).to_bytes(2, "big") + bytes(40)
    datagram = V1_SERVER_INITIAL + handshake
    conn = QuicConnection()
    conn.datagram(True, V1_CLIENT_INITIAL)
    conn.datagram(False, datagram)
    assert conn.server is not None and not conn.issues


def test_unsupported_version_is_counted_not_rejected_and_still_reported():
    draft22 = bytearray(protect(CLIENT_PAYLOAD))
    draft22[1:5] = (0xFF000016).to_bytes(4, "big")
    sensor, events = sense([(True, bytes(draft22))])
    assert sensor.problems["quic_unsupported_version"] == 1
    assert not sensor.rejected
    assert [e["quic"]["version"] for e in events] == ["draft-22"]
    assert "tls" not in events[0]


DRAFTS = [0xFF000000 | d for d in (23, 27, 28, 29, 32, 33, 34)]


@pytest.mark.parametrize("version", DRAFTS, ids=version_name)
def test_draft_versions_are_decrypted(version):
    sensor, events = sense([(True, protect(CLIENT_PAYLOAD, version=version))])
    assert not sensor.problems
    assert [(e["quic"]["version"], e["tls"]["client"]["server_name"]) for e in events] == \
        [(version_name(version), "example.com")]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_draft_salts_agree_with_tshark(tmp_path):
    """Wireshark derives each draft's Initial keys on its own: it reads the
    ClientHello of the packets protected here with our salts."""
    path = tmp_path / "drafts.pcap"
    # one connection each: its own ports and connection ID
    wrpcap(str(path), [Ether(udp_frame(protect(CLIENT_PAYLOAD, version=v, dcid=bytes([i]) * 8,
                                               key_dcid=bytes([i]) * 8), sport=40000 + i))
                       for i, v in enumerate(DRAFTS)])
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "quic.version",
                          "-e", "tls.handshake.extensions_server_name"],
                         capture_output=True, text=True, check=True).stdout
    assert [line.split("\t") for line in out.splitlines()] == \
        [[f"0x{v:08x}", "example.com"] for v in DRAFTS]


def test_udp_that_only_resembles_a_long_header_is_not_examined():
    # first byte 0xE3 (an NTP client with the alarm bits set), no QUIC version after it
    ntp = bytes.fromhex("e30004fa0001000000010000") + bytes(36)
    assert not looks_like_quic(ntp)
    sensor, events = sense([(True, ntp), (False, ntp)])
    assert events == [] and not sensor.problems


# -- bad input ------------------------------------------------------------------------------

def _problems_after(datagrams: list[tuple[bool, bytes]]) -> tuple[NetworkSensor, list[dict]]:
    sensor, events = sense(datagrams)
    assert "parser_failure" not in sensor.problems
    return sensor, events


def test_truncated_initial_is_counted_and_rejected():
    sensor, events = _problems_after([(True, V1_CLIENT_INITIAL[:600])])
    assert sensor.problems["quic_truncated"] == 1
    assert any(r.reason.startswith("quic_truncated: Length 1182 runs past")
               for r in sensor.rejected)
    assert all("tls" not in e for e in events)


def test_length_field_too_short_for_a_protected_packet():
    packet = bytearray(V1_CLIENT_INITIAL)
    packet[16:18] = (0x4000 | 10).to_bytes(2, "big")  # Length 10
    sensor, _events = _problems_after([(True, bytes(packet))])
    assert sensor.problems["quic_truncated"] == 1


def test_authentication_tag_mismatch_is_counted_per_packet():
    bad = bytearray(V1_CLIENT_INITIAL)
    bad[600] ^= 0x01
    conn = QuicConnection()
    conn.datagram(True, bytes(bad))
    assert conn.client is None
    assert [reason for reason, _ in conn.issues] == ["quic_decrypt_failed"]

    sensor, events = _problems_after([(True, bytes(bad)), (True, bytes(bad))])
    assert sensor.problems["quic_decrypt_failed"] == 2
    assert all("tls" not in e for e in events)


def test_decryption_failures_end_the_flows_quic_work():
    bad = bytearray(V1_CLIENT_INITIAL)
    bad[-1] ^= 0xFF
    datagrams = [(True, bytes(bad))] * MAX_DECRYPT_FAILURES + [(True, V1_CLIENT_INITIAL)]
    sensor, events = _problems_after(datagrams)
    assert sensor.problems["quic_decrypt_failed"] == MAX_DECRYPT_FAILURES
    assert sensor.problems["quic_no_handshake"] == 1
    # the good packet after the budget is not looked at
    assert all("tls" not in e for e in events)


def test_a_frame_an_initial_may_not_carry_is_counted():
    stream_frame = b"\x08\x00" + b"GET /" + bytes(1100)  # STREAM in an Initial
    sensor, _events = _problems_after([(True, protect(stream_frame))])
    assert sensor.problems["quic_bad_frame"] == 1
    truncated_crypto = b"\x06\x00\x44\x00" + b"x" * 40 + bytes(1)  # 1024 bytes claimed
    conn = QuicConnection()
    conn.datagram(True, protect(truncated_crypto))
    assert [reason for reason, _ in conn.issues] == ["quic_bad_frame"]


def test_crypto_data_at_a_huge_offset_is_refused():
    packet = protect(crypto_frame(1 << 40, b"x" * 100) + bytes(1000))
    sensor, _events = _problems_after([(True, packet)])
    assert sensor.problems["quic_crypto_too_large"] == 1
    packet = protect(crypto_frame(MAX_CRYPTO_BYTES - 10, b"x" * 100) + bytes(1000))
    conn = QuicConnection()
    conn.datagram(True, packet)
    assert [reason for reason, _ in conn.issues] == ["quic_crypto_too_large"]


def test_crypto_data_behind_a_gap_is_reported_when_the_flow_ends():
    packet = protect(crypto_frame(100, CLIENT_HELLO[100:]) + bytes(1000))
    sensor, events = _problems_after([(True, packet)])
    assert sensor.problems["quic_crypto_gap"] == 1
    assert len(events) == 1 and "tls" not in events[0]  # the connection, without hellos
    assert events[0]["quic"]["client_initial_dcid"] == DCID.hex()


def test_a_handshake_message_that_is_not_a_client_hello():
    finished = b"\x14\x00\x00\x20" + bytes(32)
    sensor, _events = _problems_after([(True, protect(crypto_frame(0, finished)
                                                      + bytes(1000)))])
    assert sensor.problems["quic_bad_handshake"] == 1


def test_a_garbled_client_hello_is_a_tls_error():
    garbled = b"\x01\x00\x00\x10" + b"\x03\x03" + bytes(14)
    sensor, _events = _problems_after([(True, protect(crypto_frame(0, garbled)
                                                      + bytes(1000)))])
    assert sensor.problems["tls_malformed"] == 1


def test_bad_connection_id_length_and_cut_headers():
    header = bytearray(V1_CLIENT_INITIAL[:40])
    header[5] = 40  # a 40-byte DCID, more than version 1 allows
    conn = QuicConnection()
    conn.datagram(True, bytes(header) + bytes(1200))
    assert [reason for reason, _ in conn.issues] == ["quic_bad_header"]
    conn = QuicConnection()
    conn.datagram(True, V1_CLIENT_INITIAL[:6])
    assert [reason for reason, _ in conn.issues] == ["quic_truncated"]


def test_random_damage_never_escapes_as_an_exception():
    rng = random.Random(9001)
    good = [V1_CLIENT_INITIAL, V1_SERVER_INITIAL, V2_CLIENT_INITIAL,
            protect(crypto_frame(0, CLIENT_HELLO) + b"\x02\x05\x00\x00\x01" + bytes(900))]
    for _ in range(400):
        packet = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 8)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        if rng.random() < 0.3:
            del packet[rng.randrange(7, len(packet)):]
        conn = QuicConnection()
        conn.datagram(True, bytes(packet))  # raises nothing
        conn.datagram(False, bytes(packet))
        conn.close()
        assert all(reason for reason, _ in conn.issues)
    # through the sensor as well: damage is counted, never a parser failure
    datagrams = []
    for i in range(200):
        packet = bytearray(rng.choice(good))
        packet[rng.randrange(5, len(packet))] ^= 1 << rng.randrange(8)
        datagrams.append((i % 2 == 0, bytes(packet)))
    sensor, _events = _problems_after(datagrams)
    assert sum(sensor.problems.values()) >= 1


def test_memory_per_flow_is_bounded():
    # thousands of one-byte CRYPTO chunks beyond a gap: held up to the chunk limit
    frames = b"".join(crypto_frame(1000 + 2 * i, b"y") for i in range(200))
    conn = QuicConnection()
    conn.datagram(True, protect(frames + bytes(100)))
    stream = conn._streams[True]
    assert stream is not None and len(stream.pending) <= 128
    assert [reason for reason, _ in conn.issues] == ["quic_crypto_too_large"]

    # large overlapping chunks at nearby offsets: the bytes held stay under the limit
    conn = QuicConnection()
    for i in range(30):  # 30 chunks of 3,000 bytes: 90,000 bytes offered
        conn.datagram(True, protect(crypto_frame(5000 + i, b"z" * 3000), pn=i))
    stream = conn._streams[True]
    assert stream is not None and stream.pending_bytes <= MAX_CRYPTO_BYTES
    assert "quic_crypto_too_large" in {reason for reason, _ in conn.issues}



# -- Retry and version negotiation ------------------------------------------------------------

def test_after_a_retry_the_keys_come_from_the_connection_id_the_server_chose():
    first_dcid, retry_scid = bytes.fromhex("0102030405060708"), bytes.fromhex("a1a2a3a4")
    client_scid = b"\xc1\xc2"
    first = protect(CLIENT_PAYLOAD, dcid=first_dcid, key_dcid=first_dcid, scid=client_scid)
    retry = (bytes((0xF0,)) + QUIC_V1.to_bytes(4, "big") + bytes((len(client_scid),))
             + client_scid + bytes((len(retry_scid),)) + retry_scid + b"token" + bytes(16))
    again = protect(CLIENT_PAYLOAD, dcid=retry_scid, key_dcid=retry_scid, scid=client_scid,
                    token=b"token", pn=1)
    answer = protect(SERVER_PAYLOAD, dcid=client_scid, scid=b"\x5e\x5e", key_dcid=retry_scid,
                     server=True)
    conn = QuicConnection()
    conn.datagram(True, first)
    conn.datagram(False, retry)
    conn.datagram(True, again)
    conn.datagram(False, answer)
    assert conn.issues == []
    assert conn.client is not None and conn.server is not None
    assert conn.fields() == {"version": "1", "client_initial_dcid": first_dcid.hex(),
                             "client_scid": "c1c2", "server_scid": "5e5e"}


def test_after_version_negotiation_the_client_starts_again():
    greased, dcid = 0x1A2A3A4A, bytes.fromhex("0badc0de0badc0de")
    offer = bytearray(protect(CLIENT_PAYLOAD))
    offer[1:5] = greased.to_bytes(4, "big")
    negotiation = (bytes((0x80,)) + bytes(4) + b"\x00" + bytes((len(DCID),)) + DCID
                   + QUIC_V2.to_bytes(4, "big") + QUIC_V1.to_bytes(4, "big"))
    v2 = protect(CLIENT_PAYLOAD, version=QUIC_V2, dcid=dcid, key_dcid=dcid)
    answer = protect(SERVER_PAYLOAD, version=QUIC_V2, dcid=b"", scid=b"\x77", key_dcid=dcid,
                     server=True)
    conn = QuicConnection()
    for from_client, datagram in ((True, bytes(offer)), (False, negotiation), (True, v2),
                                  (False, answer)):
        conn.datagram(from_client, datagram)
    assert conn.client is not None and conn.server is not None
    assert conn.fields()["version"] == "quicv2"
    assert [reason for reason, _ in conn.issues] == ["quic_unsupported_version"]
