#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (run from anywhere; idempotent).

Seeds are realistic inputs (browser-shaped STUN, RTP, RTCP, SDP, ICE candidates, the protocol
examples from docs/protocol.md) plus the hostile cases of shared/design/RELIABILITY.md A.1-A.3.
Files found by fuzzing (crash-*, slow-*) are added by hand next to these and never overwritten.
"""
import hashlib
import hmac
import json
import os
import re
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")

# Must match sfu/src/fuzzing.rs.
FUZZ_UFRAG = "fuzzufrag"
FUZZ_PWD = "fuzzpassword0123456789ab"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- STUN (RFC 8489 / 8445)
MAGIC = 0x2112A442
TID = bytes(range(1, 13))


def attr(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def stun(msg_type, attrs, integrity_key=None, fingerprint=True, tid=TID):
    body = b"".join(attrs)
    if integrity_key is not None:
        # Length covers up to and including MESSAGE-INTEGRITY (24 bytes).
        hdr = struct.pack("!HHI", msg_type, len(body) + 24, MAGIC) + tid
        mac = hmac.new(integrity_key, hdr + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
    if fingerprint:
        hdr = struct.pack("!HHI", msg_type, len(body) + 8, MAGIC) + tid
        crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", msg_type, len(body), MAGIC) + tid + body


def binding_request(username, key, use_candidate=True, extra=()):
    attrs = [
        attr(0x0006, username),
        attr(0xC057, struct.pack("!HH", 1, 10)),  # GOOG-NETWORK-INFO (Chromium)
        attr(0x802A, struct.pack("!Q", 0x1122334455667788)),  # ICE-CONTROLLING
        attr(0x0024, struct.pack("!I", 1853817087)),  # PRIORITY
    ]
    if use_candidate:
        attrs.append(attr(0x0025, b""))
    attrs.extend(extra)
    return stun(0x0001, attrs, integrity_key=key)


def stun_seeds():
    t = "stun_demux"
    user = (FUZZ_UFRAG + ":cliU").encode()
    key = FUZZ_PWD.encode()
    good = binding_request(user, key)
    write(t, "binding-request-chromium-valid", good)
    write(t, "binding-request-no-use-candidate", binding_request(user, key, use_candidate=False))
    write(t, "binding-request-unknown-ufrag", binding_request(b"nosuchufrag:cliU", key))
    write(t, "binding-request-bad-integrity", binding_request(user, b"wrongpassword"))
    write(t, "binding-request-no-fingerprint",
          stun(0x0001, [attr(0x0006, user), attr(0x0024, struct.pack("!I", 1))],
               integrity_key=key, fingerprint=False))
    write(t, "binding-request-no-integrity",
          stun(0x0001, [attr(0x0006, user), attr(0x0024, struct.pack("!I", 1))]))
    write(t, "binding-indication", stun(0x0011, []))
    write(t, "binding-success-response",
          stun(0x0101, [attr(0x0020, struct.pack("!HHI", 1, 0x1234 ^ 0x2112, 0x7F000001 ^ MAGIC))],
               integrity_key=key))
    write(t, "username-no-colon", stun(0x0001, [attr(0x0006, b"fuzzufrag")], integrity_key=key))
    write(t, "username-empty-local", stun(0x0001, [attr(0x0006, b":cliU")], integrity_key=key))
    write(t, "username-empty", stun(0x0001, [attr(0x0006, b"")], integrity_key=key))
    write(t, "username-invalid-utf8",
          stun(0x0001, [attr(0x0006, b"fuzz\xff\xfe:cliU")], integrity_key=key))
    write(t, "username-twice",
          stun(0x0001, [attr(0x0006, b"other:cliU"), attr(0x0006, user)], integrity_key=key))
    write(t, "username-long-513", stun(0x0001, [attr(0x0006, b"u" * 500 + b":" + b"c" * 12)]))
    # Hostile framing (RELIABILITY A.6).
    b = bytearray(good)
    b[2:4] = struct.pack("!H", 0xFFFF)  # message length past the end
    write(t, "header-length-past-end", bytes(b))
    b = bytearray(good)
    b[22:24] = struct.pack("!H", 0xFFF0)  # first attribute length past the end
    write(t, "attr-length-past-end", bytes(b))
    b = bytearray(good)
    b[22:24] = struct.pack("!H", len(user) + 3)  # attribute spills into the next header
    write(t, "attr-length-overlaps-next", bytes(b))
    write(t, "truncated-mid-attribute", good[:30])
    write(t, "truncated-in-header", good[:19])
    write(t, "header-only", struct.pack("!HHI", 1, 0, MAGIC) + TID)
    write(t, "wrong-magic-cookie", good[:4] + b"\xde\xad\xbe\xef" + good[8:])
    write(t, "length-not-multiple-of-4", stun(0x0001, [struct.pack("!HH", 0x0006, 5) + b"a:b"]))
    write(t, "attr-zero-length-many", stun(0x0001, [attr(0x8022, b"")] * 300, fingerprint=False))
    write(t, "integrity-not-last",
          stun(0x0001, [attr(0x0006, user), attr(0x0008, b"\0" * 20), attr(0x0024, b"\0\0\0\1")]))
    write(t, "oversize-1501", good + b"\0" * (1501 - len(good)))
    write(t, "empty", b"")
    write(t, "one-byte-zero", b"\x00")
    # Other demux classes, to cover the whole first-byte space.
    write(t, "dtls-client-hello", dtls_client_hello())
    write(t, "rtp-opus", rtp(111, 1, 960, 0x1001, b"\xfc" + b"\x55" * 40, ext=audio_exts()))
    write(t, "rtcp-rr", rtcp_rr())
    write(t, "turn-channel-data", b"\x40\x00\x00\x04abcd")


# ---------------------------------------------------------------- DTLS
def dtls_client_hello():
    random = bytes(range(32))
    ciphers = struct.pack("!HHHH", 6, 0xC02B, 0xC02F, 0xCCA9)
    exts = (
        struct.pack("!HH", 0x000E, 5) + struct.pack("!HHB", 2, 0x0001, 0)  # use_srtp
        + struct.pack("!HHH", 0x000A, 4, 2) + struct.pack("!H", 0x001D)  # groups
        + struct.pack("!HH", 0x0017, 0)  # extended master secret
    )
    body = (b"\xfe\xfd" + random + b"\x00" + b"\x00" + ciphers + b"\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    hs = struct.pack("!B", 1) + len(body).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00" \
        + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0xFEFF, 0) + b"\x00" * 6 + struct.pack("!H", len(hs)) + hs


# ---------------------------------------------------------------- RTP / RTCP (RFC 3550, 8285)
def one_byte_ext(elems):
    data = b"".join(struct.pack("!B", (i << 4) | (len(v) - 1)) + v for i, v in elems)
    data += b"\0" * ((4 - len(data) % 4) % 4)
    return struct.pack("!HH", 0xBEDE, len(data) // 4) + data


def two_byte_ext(elems):
    data = b"".join(struct.pack("!BB", i, len(v)) + v for i, v in elems)
    data += b"\0" * ((4 - len(data) % 4) % 4)
    return struct.pack("!HH", 0x1000, len(data) // 4) + data


def audio_exts():
    # ids as negotiated in BASE_OFFER: 1 audio level, 2 abs-send-time, 3 twcc, 4 mid.
    return one_byte_ext([(1, b"\x9e"), (2, b"\x12\x34\x56"), (3, b"\x00\x2a"), (4, b"0")])


def video_exts():
    return one_byte_ext([(2, b"\x12\x34\x56"), (3, b"\x00\x2b"), (4, b"1"), (10, b"h"),
                         (13, b"\x00"), (14, b"\x00\x00\x10")])


def rtp(pt, seq, ts, ssrc, payload, marker=False, ext=None, csrcs=(), padding=None, tag=10):
    b0 = 0x80 | (0x20 if padding is not None else 0) | (0x10 if ext else 0) | len(csrcs)
    hdr = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    hdr += b"".join(struct.pack("!I", c) for c in csrcs)
    if ext:
        hdr += ext
    pad = b""
    if padding is not None:
        pad = b"\0" * max(padding - 1, 0) + struct.pack("!B", padding)
    return hdr + payload + pad + b"\xaa" * tag  # SRTP auth tag


def rtcp_sr():
    sr = struct.pack("!BBH", 0x81, 200, 12) + struct.pack("!IIIIII", 0x1001, 0xE1234567, 0x89ABCDEF,
                                                        960, 10, 400)
    sr += struct.pack("!IIIIII", 0x2002, 0x00000005, 1234, 7, 0x0000ABCD, 0x00010000)
    cname = b"fuzz"
    sdes_items = struct.pack("!BB", 1, len(cname)) + cname + b"\0"
    sdes_items += b"\0" * ((4 - (4 + len(sdes_items)) % 4) % 4)
    sdes = struct.pack("!BBH", 0x81, 202, (4 + len(sdes_items)) // 4) + struct.pack("!I", 0x1001) \
        + sdes_items
    return sr + sdes


def rtcp_rr():
    return struct.pack("!BBH", 0x81, 201, 7) + struct.pack("!I", 0x3003) + \
        struct.pack("!IIIIII", 0x2002, 0x00000005, 1234, 7, 0x0000ABCD, 0x00010000)


def srtcp(packet):
    return packet + struct.pack("!I", 0x80000001) + b"\xbb" * 10


def rtp_seeds():
    t = "rtp_rtcp"
    write(t, "rtp-opus-exts", rtp(111, 1000, 48000, 0x1001, b"\xfc" + b"\x55" * 60, ext=audio_exts()))
    vp8 = b"\x90\xe0\x12\x34" + b"\x10\x02\x00\x9d\x01\x2a" + b"\x00" * 80
    write(t, "rtp-vp8-keyframe-exts",
          rtp(96, 2000, 90000, 0x2002, vp8, marker=True, ext=video_exts()))
    write(t, "rtp-vp8-two-byte-exts",
          rtp(96, 2001, 90000, 0x2002, vp8, ext=two_byte_ext([(4, b"1"), (10, b"h"), (200, b"x" * 40)])))
    write(t, "rtp-rtx", rtp(97, 1, 90000, 0x2003, b"\x07\xd0" + vp8, ext=video_exts()))
    write(t, "rtp-no-ext", rtp(111, 5, 960, 0x1001, b"\xfc\x00"))
    write(t, "rtp-unknown-ssrc", rtp(111, 5, 960, 0xDEADBEEF, b"\xfc\x00", ext=audio_exts()))
    write(t, "rtp-pt-low-escape", rtp(35, 5, 960, 0x1001, b"\x00" * 10))
    write(t, "rtp-padding-valid", rtp(111, 6, 960, 0x1001, b"\xfc" * 20, padding=4, tag=0))
    # RELIABILITY A.2: malformed headers.
    write(t, "rtp-padding-len-zero", rtp(111, 7, 960, 0x1001, b"\xfc" * 20, padding=0, tag=0))
    write(t, "rtp-padding-past-payload",
          rtp(111, 8, 960, 0x1001, b"\xfc" * 3, tag=0)[:-1] + b"\xff")
    b = bytearray(rtp(111, 8, 960, 0x1001, b"\xfc" * 3, tag=0))
    b[0] |= 0x20
    b[-1] = 0xFF
    write(t, "rtp-padding-255-short", bytes(b))
    write(t, "rtp-csrc-15-on-12-bytes", struct.pack("!BBHII", 0x8F, 111, 9, 960, 0x1001))
    write(t, "rtp-csrc-15-full", rtp(111, 9, 960, 0x1001, b"\xfc", csrcs=list(range(15))))
    good_ext = rtp(111, 10, 960, 0x1001, b"\xfc" * 4, ext=audio_exts(), tag=0)
    b = bytearray(good_ext)
    b[14:16] = struct.pack("!H", 0xFFFF)  # one-byte extension block length past the end
    write(t, "rtp-one-byte-ext-len-past-end", bytes(b))
    b = bytearray(good_ext)
    b[16] = 0x1F  # element length 2 at the last byte
    write(t, "rtp-one-byte-ext-elem-past-end", bytes(b[:18]))
    two = rtp(96, 11, 90000, 0x2002, b"", ext=two_byte_ext([(10, b"h" * 8)]), tag=0)
    b = bytearray(two)
    b[17] = 0xFF  # two-byte element length past the end
    write(t, "rtp-two-byte-ext-elem-past-end", bytes(b))
    b = bytearray(two)
    b[14:16] = struct.pack("!H", 0x4000)
    write(t, "rtp-two-byte-ext-len-past-end", bytes(b))
    write(t, "rtp-ext-bit-no-ext", struct.pack("!BBHII", 0x90, 111, 12, 960, 0x1001))
    write(t, "rtp-empty-payload", struct.pack("!BBHII", 0x80, 111, 13, 960, 0x1001))
    write(t, "rtp-three-bytes", b"\x80\x6f\x00")
    write(t, "rtp-mid-unknown", rtp(111, 14, 960, 0x4004, b"\xfc",
                                    ext=one_byte_ext([(4, b"zz"), (10, b"q")])))
    # RELIABILITY A.1: RTCP.
    write(t, "rtcp-sr-sdes-compound", srtcp(rtcp_sr()))
    write(t, "rtcp-rr", srtcp(rtcp_rr()))
    write(t, "rtcp-pli", srtcp(struct.pack("!BBHII", 0x81, 206, 2, 0x3003, 0x2002)))
    write(t, "rtcp-fir", srtcp(struct.pack("!BBHIIII", 0x84, 206, 4, 0x3003, 0, 0x2002, 0x01000000)))
    write(t, "rtcp-nack", srtcp(struct.pack("!BBHIIHH", 0x81, 205, 3, 0x3003, 0x2002, 2000, 0x00FF)))
    twcc = struct.pack("!BBHII", 0x8F, 205, 5, 0x3003, 0x2002) + struct.pack("!HHI", 1, 0xFFFF, 0x00000100) \
        + struct.pack("!HH", 0x2000 | 0x1FFF, 0)
    write(t, "rtcp-twcc-status-count-overflow", srtcp(twcc))
    write(t, "rtcp-bye", srtcp(struct.pack("!BBHI", 0x81, 203, 1, 0x1001)))
    write(t, "rtcp-remb", srtcp(struct.pack("!BBHII4sBBHI", 0x8F, 206, 5, 0x3003, 0, b"REMB", 1, 0x12, 0x3456,
                                            0x2002)))
    write(t, "rtcp-length-past-buffer", srtcp(struct.pack("!BBHI", 0x81, 201, 0xFFFF, 0x3003)))
    write(t, "rtcp-length-zero", srtcp(struct.pack("!BBHI", 0x81, 201, 0, 0x3003)))
    write(t, "rtcp-report-count-exceeds-data", srtcp(struct.pack("!BBHI", 0x9F, 201, 1, 0x3003)))
    write(t, "rtcp-compound-truncated-mid-report", srtcp(rtcp_sr()[:40]))
    write(t, "rtcp-sdes-item-past-end", srtcp(struct.pack("!BBHIBB", 0x81, 202, 2, 0x1001, 1, 200)))
    write(t, "rtcp-app", srtcp(struct.pack("!BBHI4s", 0x80, 204, 2, 0x1001, b"TEST")))
    write(t, "rtcp-xr-rrtr", srtcp(struct.pack("!BBHIBBHII", 0x80, 207, 4, 0x3003, 4, 0, 2, 1, 2)))
    write(t, "rtcp-unprotected", rtcp_rr())
    write(t, "rtcp-oversize-1501", srtcp(rtcp_rr()) + b"\0" * 1500)


# ---------------------------------------------------------------- SDP
FP = ("7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:"
      "19:08")


def base_offer():
    src = open(os.path.join(ROOT, "sfu", "src", "fuzzing.rs")).read()
    m = re.search(r'pub const BASE_OFFER: &str = "(.*?)";', src, re.S)
    text = m.group(1).replace("\\\n", "").replace("\\r\\n", "\r\n")
    assert text.startswith("v=0\r\n") and "\\" not in text, "could not read BASE_OFFER"
    return text


CHROMIUM_OFFER = "\r\n".join([
    "v=0",
    "o=- 8024196212330434478 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS 3f2c1a0e-6a43-4f5e-9a55-0e4c1c9d7b21",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Zq7v",
    "a=ice-pwd:0sD4pXvIj7wq3pPTpGmlbCqe",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + FP,
    "a=setup:actpass",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendonly",
    "a=msid:3f2c1a0e-6a43-4f5e-9a55-0e4c1c9d7b21 7d1b0c55-2f0e-4c8a-8b7f-4a1d8a3e0b11",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:2903516126 cname:Yv0h2Ck4W1X3d3bx",
    "a=ssrc:2903516126 msid:3f2c1a0e-6a43-4f5e-9a55-0e4c1c9d7b21 7d1b0c55-2f0e-4c8a-8b7f-4a1d8a3e0b11",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99 100 101 112 113 116 117 118",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Zq7v",
    "a=ice-pwd:0sD4pXvIj7wq3pPTpGmlbCqe",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + FP,
    "a=setup:actpass",
    "a=mid:1",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:13 urn:3gpp:video-orientation",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "a=sendonly",
    "a=msid:3f2c1a0e-6a43-4f5e-9a55-0e4c1c9d7b21 1c0f6d8e-5b0a-4b0e-9a3c-2e9d6f0a7c22",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 transport-cc",
    "a=rtcp-fb:96 ccm fir",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:102 H264/90000",
    "a=rtcp-fb:102 goog-remb",
    "a=rtcp-fb:102 transport-cc",
    "a=rtcp-fb:102 ccm fir",
    "a=rtcp-fb:102 nack",
    "a=rtcp-fb:102 nack pli",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:103 rtx/90000",
    "a=fmtp:103 apt=102",
    "a=rtpmap:104 H264/90000",
    "a=rtcp-fb:104 nack pli",
    "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
    "a=rtpmap:105 rtx/90000",
    "a=fmtp:105 apt=104",
    "a=rtpmap:106 H264/90000",
    "a=rtcp-fb:106 nack pli",
    "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    "a=rtpmap:107 rtx/90000",
    "a=fmtp:107 apt=106",
    "a=rtpmap:108 H264/90000",
    "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
    "a=rtpmap:109 rtx/90000",
    "a=fmtp:109 apt=108",
    "a=rtpmap:127 H264/90000",
    "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
    "a=rtpmap:125 rtx/90000",
    "a=fmtp:125 apt=127",
    "a=rtpmap:39 H264/90000",
    "a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f",
    "a=rtpmap:40 rtx/90000",
    "a=fmtp:40 apt=39",
    "a=rtpmap:45 AV1/90000",
    "a=fmtp:45 level-idx=5;profile=0;tier=0",
    "a=rtpmap:46 rtx/90000",
    "a=fmtp:46 apt=45",
    "a=rtpmap:98 VP9/90000",
    "a=fmtp:98 profile-id=0",
    "a=rtpmap:99 rtx/90000",
    "a=fmtp:99 apt=98",
    "a=rtpmap:100 VP9/90000",
    "a=fmtp:100 profile-id=2",
    "a=rtpmap:101 rtx/90000",
    "a=fmtp:101 apt=100",
    "a=rtpmap:112 H264/90000",
    "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
    "a=rtpmap:113 rtx/90000",
    "a=fmtp:113 apt=112",
    "a=rtpmap:116 red/90000",
    "a=rtpmap:117 rtx/90000",
    "a=fmtp:117 apt=116",
    "a=rtpmap:118 ulpfec/90000",
    "a=rid:h send",
    "a=rid:m send",
    "a=rid:l send",
    "a=simulcast:send h;m;l",
    "",
])

WEBRTC_RS_OFFER = "\r\n".join([
    "v=0",
    "o=- 1964385424356329463 719326000 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=fingerprint:sha-256 " + FP,
    "a=extmap-allow-mixed",
    "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8",
    "c=IN IP4 0.0.0.0",
    "a=setup:actpass",
    "a=mid:0",
    "a=ice-ufrag:sQbTtyyGkjhTdNDv",
    "a=ice-pwd:bPmVPuCrtUnSDgQUnqCPgHXMwVzTrSgc",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtcp-fb:111 transport-cc ",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=ssrc:3265826392 cname:webrtc-rs",
    "a=ssrc:3265826392 msid:webrtc-rs audio",
    "a=ssrc:3265826392 mslabel:webrtc-rs",
    "a=ssrc:3265826392 label:audio",
    "a=msid:webrtc-rs audio",
    "a=sendrecv",
    "a=candidate:167090039 1 udp 2130706431 127.0.0.1 53920 typ host",
    "a=end-of-candidates",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
    "c=IN IP4 0.0.0.0",
    "a=setup:actpass",
    "a=mid:1",
    "a=ice-ufrag:sQbTtyyGkjhTdNDv",
    "a=ice-pwd:bPmVPuCrtUnSDgQUnqCPgHXMwVzTrSgc",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb ",
    "a=rtcp-fb:96 ccm fir",
    "a=rtcp-fb:96 nack ",
    "a=rtcp-fb:96 nack pli",
    "a=rtcp-fb:96 transport-cc ",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=ssrc-group:FID 1402338829 2113484102",
    "a=ssrc:1402338829 cname:webrtc-rs",
    "a=ssrc:1402338829 msid:webrtc-rs video",
    "a=ssrc:2113484102 cname:webrtc-rs",
    "a=ssrc:2113484102 msid:webrtc-rs video",
    "a=msid:webrtc-rs video",
    "a=sendrecv",
    "a=candidate:167090039 1 udp 2130706431 127.0.0.1 53920 typ host",
    "a=end-of-candidates",
    "",
])

FIREFOX_OFFER = "\r\n".join([
    "v=0",
    "o=mozilla...THIS_IS_SDPARTA-99.0 3815237587461526716 0 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=sendrecv",
    "a=fingerprint:sha-256 " + FP,
    "a=group:BUNDLE 0 1",
    "a=ice-options:trickle",
    "a=msid-semantic:WMS *",
    "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101",
    "c=IN IP4 0.0.0.0",
    "a=sendonly",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level",
    "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1",
    "a=fmtp:101 0-15",
    "a=ice-pwd:d1e5d1c5c6a3a0b0a3a0d1e5d1c5c6a3",
    "a=ice-ufrag:8f2b1c3d",
    "a=mid:0",
    "a=msid:{5a3e1b2c-0000-4000-8000-000000000001} {5a3e1b2c-0000-4000-8000-000000000002}",
    "a=rtcp-mux",
    "a=rtpmap:109 opus/48000/2",
    "a=rtpmap:9 G722/8000/1",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000/1",
    "a=setup:actpass",
    "a=ssrc:1212878789 cname:{5a3e1b2c-0000-4000-8000-000000000003}",
    "m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98",
    "c=IN IP4 0.0.0.0",
    "a=sendonly",
    "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:5 urn:ietf:params:rtp-hdrext:toffset",
    "a=extmap:6/recvonly http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1",
    "a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1",
    "a=fmtp:120 max-fs=12288;max-fr=60",
    "a=fmtp:124 apt=120",
    "a=fmtp:121 max-fs=12288;max-fr=60",
    "a=fmtp:125 apt=121",
    "a=fmtp:127 apt=126",
    "a=fmtp:98 apt=97",
    "a=ice-pwd:d1e5d1c5c6a3a0b0a3a0d1e5d1c5c6a3",
    "a=ice-ufrag:8f2b1c3d",
    "a=mid:1",
    "a=msid:{5a3e1b2c-0000-4000-8000-000000000001} {5a3e1b2c-0000-4000-8000-000000000004}",
    "a=rtcp-fb:120 nack",
    "a=rtcp-fb:120 nack pli",
    "a=rtcp-fb:120 ccm fir",
    "a=rtcp-fb:120 goog-remb",
    "a=rtcp-fb:120 transport-cc",
    "a=rtcp-fb:126 nack",
    "a=rtcp-fb:126 nack pli",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:120 VP8/90000",
    "a=rtpmap:124 rtx/90000",
    "a=rtpmap:121 VP9/90000",
    "a=rtpmap:125 rtx/90000",
    "a=rtpmap:126 H264/90000",
    "a=rtpmap:127 rtx/90000",
    "a=rtpmap:97 H264/90000",
    "a=rtpmap:98 rtx/90000",
    "a=setup:actpass",
    "a=ssrc:3167869024 cname:{5a3e1b2c-0000-4000-8000-000000000003}",
    "a=ssrc:2230468216 cname:{5a3e1b2c-0000-4000-8000-000000000003}",
    "a=ssrc-group:FID 3167869024 2230468216",
    "",
])


def drop_lines(sdp, prefix):
    return "".join(l for l in sdp.splitlines(keepends=True) if not l.startswith(prefix))


def sdp_seeds():
    t = "sdp_offer"
    base = base_offer()
    write(t, "base-offer", base)
    write(t, "chromium-offer-simulcast", CHROMIUM_OFFER)
    write(t, "webrtc-rs-offer", WEBRTC_RS_OFFER)
    write(t, "firefox-offer", FIREFOX_OFFER)
    write(t, "base-offer-lf-only", base.replace("\r\n", "\n"))
    write(t, "datachannel-offer", base.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
          + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
          "a=ice-ufrag:cliU\r\na=ice-pwd:clientpassword0123456789\r\na=fingerprint:sha-256 " + FP
          + "\r\na=setup:actpass\r\na=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n")
    # RELIABILITY A.3.
    write(t, "hostile-1mib", base + "a=x-pad:" + "A" * (1 << 20) + "\r\n")
    mline = ("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=sendrecv\r\n"
             "a=rtpmap:111 opus/48000/2\r\n")
    head = base.split("m=audio")[0]
    write(t, "hostile-5000-mlines", head + "".join(mline.format(i=i) for i in range(5000)))
    small = "m=audio 9 X 111\r\na=mid:{i}\r\n"
    body = ""
    i = 0
    while len(head) + len(body) + 40 < 64 * 1024:
        body += small.format(i=i)
        i += 1
    write(t, "hostile-mlines-just-under-cap", head + body)
    write(t, "hostile-100kb-attribute", base + "a=x-long:" + "B" * 100_000 + "\r\n")
    write(t, "hostile-60kb-attribute-under-cap", base + "a=x-long:" + "B" * 60_000 + "\r\n")
    write(t, "hostile-60kb-fmtp-under-cap",
          base.replace("a=fmtp:111 minptime=10;useinbandfec=1",
                       "a=fmtp:111 " + ";".join(f"k{i}=v" for i in range(8000))))
    write(t, "missing-c-line", drop_lines(base, "c="))
    write(t, "missing-ice-ufrag", drop_lines(base, "a=ice-ufrag"))
    write(t, "missing-ice-pwd", drop_lines(base, "a=ice-pwd"))
    write(t, "missing-fingerprint", drop_lines(base, "a=fingerprint"))
    write(t, "missing-setup", drop_lines(base, "a=setup"))
    write(t, "duplicate-mid", base.replace("a=mid:1", "a=mid:0"))
    write(t, "mid-not-in-bundle", base.replace("a=mid:1", "a=mid:7"))
    write(t, "rtpmap-pt-999", base.replace("111", "999"))
    write(t, "rtpmap-pt-65536", base.replace("96", "65536"))
    write(t, "fmtp-apt-loop", base.replace("a=fmtp:97 apt=96", "a=fmtp:97 apt=97\r\na=fmtp:96 apt=97"))
    write(t, "ssrc-huge-and-duplicate", base.replace("2003", "4294967296").replace("1001", "2002"))
    write(t, "extmap-id-0-and-255", base.replace("a=extmap:1 ", "a=extmap:0 ").replace("a=extmap:14 ", "a=extmap:255 "))
    write(t, "sdes-crypto-only", drop_lines(base, "a=fingerprint").replace(
        "a=setup:actpass\r\n", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"))
    write(t, "fingerprint-md5", base.replace("sha-256", "md5"))
    write(t, "fingerprint-garbage", base.replace(FP, "ZZ:" * 40))
    write(t, "setup-active-passive-holdconn", base.replace("actpass", "holdconn"))
    # Many rids/ssrcs/rtpmaps inside the 64 KiB cap cost str0m superlinear time (see the
    # fuzzing report in fuzz/README.md); seeds stay small so the debug replay stays fast.
    write(t, "rid-simulcast-200", base.replace("a=rtpmap:96 VP8/90000\r\n", "a=rtpmap:96 VP8/90000\r\n"
          + "".join(f"a=rid:r{i} send\r\n" for i in range(200)) + "a=simulcast:send "
          + ";".join(f"r{i}" for i in range(200)) + "\r\n"))
    write(t, "ssrc-200", base.replace("a=rtpmap:96 VP8/90000\r\n", "a=rtpmap:96 VP8/90000\r\n"
          + "".join(f"a=ssrc:{10000 + i} cname:x\r\n" for i in range(200))))
    write(t, "port-zero-rejected", base.replace("m=video 9", "m=video 0"))
    write(t, "empty", "")
    write(t, "only-v", "v=0\r\n")
    write(t, "nul-bytes", base.replace("a=mid:0", "a=mid:\0"))
    write(t, "invalid-utf8", base.encode() + b"a=x:\xff\xfe\xc3\x28\r\n")
    write(t, "unicode-everywhere", base.replace("cname:fuzz", "cname:\u202e\U0001F600\u0000"))
    write(t, "truncated-mid-line", base[: len(base) // 2])
    # Publish policy (the fuzz fixture forbids screen share and declares mid 2 a screen).
    screen = ("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:cliU\r\n"
              "a=ice-pwd:clientpassword0123456789\r\na=fingerprint:sha-256 " + FP + "\r\n"
              "a=setup:actpass\r\na=mid:2\r\na={dir}\r\na=msid:s1 screen\r\na=rtcp-mux\r\n"
              "a=rtpmap:96 VP8/90000\r\n")
    bundled = base.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
    write(t, "policy-screen-sendonly-forbidden", bundled + screen.format(dir="sendonly"))
    write(t, "policy-screen-recvonly-allowed", bundled + screen.format(dir="recvonly"))

    t = "sdp_answer"
    answer = "\r\n".join([
        "v=0",
        "o=- 5016519120417476152 3 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 @MID@",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS s1",
    ]) + "\r\n"
    for l in base.split("m=")[1:]:
        answer += "m=" + l.replace("a=setup:actpass", "a=setup:active")
    answer += "\r\n".join([
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:cliU",
        "a=ice-pwd:clientpassword0123456789",
        "a=fingerprint:sha-256 " + FP,
        "a=setup:active",
        "a=mid:@MID@",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "",
    ])
    write(t, "answer-three-mlines", answer)
    write(t, "answer-two-mlines-missing-new", answer.split("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:cliU\r\na=ice-pwd:clientpassword0123456789\r\na=fingerprint:sha-256 " + FP + "\r\na=setup:active\r\na=mid:@MID@")[0])
    write(t, "answer-rejected-mline", answer.replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:cliU\r\na=ice-pwd:clientpassword0123456789\r\na=fingerprint:sha-256 " + FP + "\r\na=setup:active\r\na=mid:@MID@", "m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:@MID@"))
    write(t, "answer-pt-999", answer.replace("96", "999"))
    write(t, "answer-duplicate-mid", answer.replace("a=mid:@MID@", "a=mid:1"))
    write(t, "answer-literal-mid-2", answer.replace("@MID@", "2"))
    write(t, "answer-missing-fingerprint", drop_lines(answer, "a=fingerprint"))
    write(t, "answer-setup-actpass", answer.replace("a=setup:active", "a=setup:actpass"))
    write(t, "answer-is-an-offer", base)
    write(t, "answer-over-cap", answer + "a=x:" + "C" * 70_000 + "\r\n")
    write(t, "answer-empty", "")

    t = "ice_candidate"
    for name, c in [
        ("chromium-host", "candidate:1467250027 1 udp 2122260223 192.168.1.10 46243 typ host generation 0 ufrag Zq7v network-id 1"),
        ("chromium-mdns", "candidate:3009716371 1 udp 2122262783 7f3c6a0e-1b2c-4d5e-8f90-a1b2c3d4e5f6.local 58612 typ host generation 0 ufrag Zq7v network-id 2"),
        ("chromium-srflx", "candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.1.10 rport 46243 generation 0 ufrag Zq7v network-id 1"),
        ("chromium-relay", "candidate:3453233474 1 udp 41885439 198.51.100.2 61234 typ relay raddr 203.0.113.7 rport 46243 generation 0 ufrag Zq7v network-id 1"),
        ("chromium-tcp-active", "candidate:2996446617 1 tcp 1518280447 192.168.1.10 9 typ host tcptype active generation 0 ufrag Zq7v network-id 1"),
        ("ipv6-host", "candidate:1 1 udp 2122265343 2001:db8::1 50000 typ host"),
        ("with-a-prefix", "a=candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host"),
        ("protocol-md-example", "candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host"),
        ("end-of-candidates", ""),
        ("whitespace", "   \t\r\n"),
        ("firefox-host", "candidate:0 1 UDP 2122252543 192.168.1.10 51095 typ host"),
        ("rtcp-component-2", "candidate:1 2 udp 2122260222 127.0.0.1 54322 typ host"),
        ("port-too-big", "candidate:1 1 udp 2122260223 127.0.0.1 99999 typ host"),
        ("priority-huge", "candidate:1 1 udp 99999999999999999999 127.0.0.1 54321 typ host"),
        ("unknown-type", "candidate:1 1 udp 1 127.0.0.1 1 typ bogus"),
        ("bad-ip", "candidate:1 1 udp 1 999.1.1.1 1 typ host"),
        ("missing-fields", "candidate:1 1 udp"),
        ("overlong-1025", "candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host " + "x" * 1000),
        ("unicode", "candidate:\u00e9 1 udp 1 127.0.0.1 1 typ host \U0001F600"),
    ]:
        write(t, name, c)


# ---------------------------------------------------------------- signalling JSON
def signalling_seeds():
    t = "signalling_frame"
    doc = open(os.path.join(ROOT, "docs", "protocol.md")).read()
    blocks = re.findall(r"```json\n(.*?)\n```", doc, re.S)
    assert len(blocks) >= 20, "protocol.md examples not found"
    seen = {}
    for text in blocks:
        msg_type = json.loads(text)["type"]
        name = "doc-" + msg_type + ("-reply" if '"reply_to"' in text else "")
        # Every example is a seed: a second one of the same type gets "-2" (and so on).
        seen[name] = seen.get(name, 0) + 1
        write(t, name + (f"-{seen[name]}" if seen[name] > 1 else ""), text)
    write(t, "media-offer-real-sdp", json.dumps({"id": "3", "type": "media_offer", "sdp": base_offer()}))
    write(t, "invalid-utf8", b'{"id":"1","type":"join","token":"\xff\xfe\xc3\x28"}')
    write(t, "lone-surrogate", '{"type":"join","token":"\\ud800"}')
    write(t, "deep-nesting", "[" * 100_000)
    write(t, "deep-nesting-object", '{"type":"ping","x":' + "{\"a\":" * 5000 + "1" + "}" * 5000 + "}")
    write(t, "huge-number", '{"type":"mute","audio":true,"video":1' + "0" * 5000 + "}")
    write(t, "id-too-long", json.dumps({"id": "x" * 65, "type": "ping"}))
    write(t, "id-not-string", '{"id":7,"type":"ping"}')
    write(t, "duplicate-keys", '{"type":"join","token":"a","token":"b","type":"ping"}')
    write(t, "unknown-type", '{"type":"become_admin"}')
    write(t, "no-type", '{"token":"x"}')
    write(t, "not-object", '"join"')
    write(t, "empty", "")
    write(t, "null", "null")
    write(t, "trailing-garbage", '{"type":"ping"} {"type":"ping"}')
    write(t, "nul-in-string", '{"type":"join","token":"a\\u0000b"}')
    write(t, "extra-fields", '{"type":"ping","admin":true,"sdp":"v=0"}')
    write(t, "mute-wrong-types", '{"type":"mute","audio":"yes","video":null}')
    write(t, "big-frame-64k", json.dumps({"type": "ice_candidate", "candidate": "c" * 65_536}))


# ---------------------------------------------------------------- routing table operations
def routing_seeds():
    # 3 bytes per operation: op % 3 (0 learn, 1 remove, 2 add ufrag), address, participant.
    t = "routing_table"
    write(t, "learn-many-one-peer", b"".join(bytes([0, a, 1]) for a in range(40)))
    write(t, "learn-then-remove", b"".join(bytes([0, a, a % 4]) for a in range(32)) + bytes([1, 0, 1]))
    write(t, "address-moves-between-peers", b"".join(bytes([0, 5, p]) for p in range(4)) * 3)
    write(t, "ufrags-add-remove", b"".join(bytes([2, 0, p, 1, 0, p]) for p in range(4)))
    write(t, "mixed", bytes(range(255)))
    write(t, "empty", b"")


# ---------------------------------------------------------------- ICE-TCP (RFC 4571) streams
def tcp_seeds():
    t = "tcp_framing"
    user = (FUZZ_UFRAG + ":cliU").encode()
    req = binding_request(user, FUZZ_PWD.encode())
    frame = lambda p: struct.pack("!H", len(p)) + p
    write(t, "binding-request", frame(req))
    write(t, "stun-dtls-rtp", frame(req) + frame(dtls_client_hello())
          + frame(rtp(111, 1, 960, 0x1001, b"\xfc" * 30, ext=audio_exts())))
    write(t, "zero-length-frames", frame(b"") * 5 + frame(req))
    write(t, "max-frame-1500", frame(b"\x80" * 1500))
    write(t, "oversize-1501", frame(b"\x80" * 1501))
    write(t, "length-ffff", b"\xff\xff" + b"\0" * 10)
    write(t, "truncated-frame", frame(req)[:-5])
    write(t, "one-byte", b"\x05")
    write(t, "empty", b"")


if __name__ == "__main__":
    tcp_seeds()
    routing_seeds()
    stun_seeds()
    rtp_seeds()
    sdp_seeds()
    signalling_seeds()
    for d in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, d))
        size = sum(os.path.getsize(os.path.join(CORPUS, d, f)) for f in files)
        print(f"{d}: {len(files)} files, {size} bytes")
