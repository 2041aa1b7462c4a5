"""The TLS probe's DER reader on bytes a probed (hostile) server chose.

``agent.probes.x509.summarize`` promises: anything it cannot read is reported as missing,
never raised; the SHA-256 of the bytes is always reported. Malformed input below must give
a ``CertificateSummary`` (fields empty where unreadable), never an exception, never a hang.
"""

from __future__ import annotations

import hashlib
import random
import ssl
from collections.abc import Callable

import pytest
import trustme

from agent.probes.x509 import CertificateSummary, summarize

# ---------------------------------------------------------------------- DER building


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, *content: bytes) -> bytes:
    body = b"".join(content)
    return bytes([tag]) + length(len(body)) + body


SEQUENCE, SET, OID, INTEGER, OCTETS, BITS = 0x30, 0x31, 0x06, 0x02, 0x04, 0x03
UTF8, PRINTABLE, BMP, UTCTIME, GENTIME = 0x0C, 0x13, 0x1E, 0x17, 0x18
CN = bytes([0x55, 4, 3])  # 2.5.4.3
O = bytes([0x55, 4, 10])  # noqa: E741  # 2.5.4.10
SAN = bytes([0x55, 29, 17])  # 2.5.29.17
SHA256_RSA = bytes.fromhex("2a864886f70d01010b")
RSA = bytes.fromhex("2a864886f70d010101")


def name(*attrs: tuple[bytes, int, bytes]) -> bytes:
    """A Name: one RDN per (attribute type OID, string tag, value)."""
    return tlv(SEQUENCE, *(tlv(SET, tlv(SEQUENCE, tlv(OID, oid), tlv(tag, value))) for oid, tag, value in attrs))


def san(*general_names: bytes) -> bytes:
    return tlv(SEQUENCE, tlv(OID, SAN), tlv(OCTETS, tlv(SEQUENCE, *general_names)))


def certificate(
    *,
    issuer: bytes = name((O, UTF8, b"Test CA")),
    subject: bytes = name((CN, UTF8, b"example.test")),
    validity: bytes = tlv(SEQUENCE, tlv(UTCTIME, b"240101000000Z"), tlv(GENTIME, b"20340101000000Z")),
    extensions: tuple[bytes, ...] = (),
) -> bytes:
    tbs = tlv(
        SEQUENCE,
        tlv(0xA0, tlv(INTEGER, b"\x02")),  # version v3
        tlv(INTEGER, b"\x01"),  # serial
        tlv(SEQUENCE, tlv(OID, SHA256_RSA)),
        issuer,
        validity,
        subject,
        tlv(SEQUENCE, tlv(SEQUENCE, tlv(OID, RSA)), tlv(BITS, b"\x00")),  # subject public key
        *([tlv(0xA3, tlv(SEQUENCE, *extensions))] if extensions else []),
    )
    return tlv(SEQUENCE, tbs, tlv(SEQUENCE, tlv(OID, SHA256_RSA)), tlv(BITS, b"\x00"))


def nothing_read(der: bytes) -> CertificateSummary:
    """What ``summarize`` reports for bytes it cannot read at all."""
    return CertificateSummary(sha256=hashlib.sha256(der).hexdigest())


@pytest.fixture(scope="module")
def real_der() -> bytes:
    """A real leaf certificate (trustme, signed by its CA), in DER."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "vantage.test", "127.0.0.1")
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


@pytest.fixture(scope="module")
def ca_der() -> bytes:
    return ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode())


# ---------------------------------------------------------------------- well-formed input


def test_real_certificate_is_described(real_der: bytes, ca_der: bytes) -> None:
    s = summarize(real_der)
    assert s.subject.startswith("O=trustme") and ",OU=Testing cert #" in s.subject
    assert s.issuer.startswith("O=trustme") and ",OU=Testing CA #" in s.issuer
    assert s.sans == ["DNS:localhost", "DNS:vantage.test", "IP:127.0.0.1"]
    assert (s.not_before, s.not_after) == ("2000-01-01T00:00:00Z", "3000-01-01T00:00:00Z")
    assert s.sha256 == hashlib.sha256(real_der).hexdigest()
    ca = summarize(ca_der)
    assert ca.subject == ca.issuer and ",OU=Testing CA #" in ca.subject and ca.sans == []


def test_built_certificate_is_described() -> None:
    email = bytes.fromhex("2a864886f70d010901")  # 1.2.840.113549.1.9.1: arcs of several bytes
    der = certificate(
        subject=name((CN, UTF8, b"example.test"), (email, 0x16, b"ops@example.test"),
                     (bytes([0x55, 4, 0x81, 0x00]), UTF8, b"x")),  # 2.5.4.128: no short name
        extensions=(san(tlv(0x82, b"a.example"), tlv(0x87, bytes(15) + b"\x01")),),
    )
    assert summarize(der) == CertificateSummary(
        subject="CN=example.test,emailAddress=ops@example.test,2.5.4.128=x", issuer="O=Test CA",
        sans=["DNS:a.example", "IP:::1"],
        not_before="2024-01-01T00:00:00Z", not_after="2034-01-01T00:00:00Z",
        sha256=hashlib.sha256(der).hexdigest(),
    )


# ---------------------------------------------------------------------- unreadable input


def test_empty_bytes() -> None:
    assert summarize(b"") == nothing_read(b"")


@pytest.mark.parametrize("which", ["leaf", "ca"])
def test_every_truncation_of_a_real_certificate(which: str, real_der: bytes, ca_der: bytes) -> None:
    der = real_der if which == "leaf" else ca_der
    for n in range(len(der)):
        cut = der[:n]
        assert summarize(cut) == nothing_read(cut), f"cut after {n} of {len(der)} bytes"


@pytest.mark.parametrize(
    "der",
    [
        b"\x30",  # a tag and no length
        b"\x30\x05\x01",  # 5 bytes announced, 1 present
        b"\x30\x84\xff\xff\xff\xff" + bytes(64),  # 4 GiB announced
        b"\x30\x82\x01",  # the long-form length itself is cut
        b"\x30\xff" + bytes(200),  # 127 length bytes
        b"\x30\x00",  # an empty certificate
        b"\x30\x02\x30\x00",  # an empty TBSCertificate
        b"\x30\x80\x30\x80\x00\x00\x00\x00",  # BER indefinite lengths (not DER)
    ],
    ids=["tag-only", "short", "4GiB", "cut-length", "127-length-bytes",
         "empty-seq", "empty-tbs", "indefinite"],
)
def test_outer_length_that_does_not_match_the_data(der: bytes) -> None:
    assert summarize(der) == nothing_read(der)


def test_length_in_more_than_four_bytes_is_refused(real_der: bytes) -> None:
    assert real_der[:2] == b"\x30\x82"
    body = real_der[4:]
    der = b"\x30\x85" + len(body).to_bytes(5, "big") + body  # the same value, 5 length bytes
    assert summarize(der) == nothing_read(der)
    again = b"\x30\x84" + len(body).to_bytes(4, "big") + body  # 4 (not minimal, but taken)
    assert summarize(again).sans == summarize(real_der).sans


def test_inner_length_longer_than_the_data(real_der: bytes) -> None:
    # The TBSCertificate (after the 4-byte outer header) announces more than there is.
    assert real_der[4] == SEQUENCE and real_der[5] == 0x82
    der = real_der[:6] + b"\xff\xff" + real_der[8:]
    assert summarize(der) == nothing_read(der)


def test_indefinite_length_inside_the_subject() -> None:
    good = certificate()
    subject = name((CN, UTF8, b"example.test"))
    assert good.count(subject) == 1
    der = good.replace(subject, b"\x30\x80" + subject[2:] + b"\x00\x00")
    assert summarize(der) == nothing_read(der)


@pytest.mark.parametrize("tag", [0x04, 0x02, 0x31, 0xA0, 0x1F, 0x00, 0xFF])
def test_wrong_outer_tag_never_raises(tag: int, real_der: bytes) -> None:
    der = bytes([tag]) + real_der[1:]
    assert summarize(der).sha256 == hashlib.sha256(der).hexdigest()
    primitive = bytes([tag]) + bytes([40]) + bytes(range(40))  # not a certificate inside
    assert summarize(primitive) == nothing_read(primitive)


def test_deep_nesting_is_read_without_recursion() -> None:
    der = b""
    for _ in range(20_000):
        der = tlv(SEQUENCE, der)
    assert summarize(der) == nothing_read(der)
    # and deep nesting in place of the subject's attribute value
    deep = b"\x05\x00"
    for _ in range(5_000):
        deep = tlv(SEQUENCE, deep)
    s = summarize(certificate(subject=tlv(SEQUENCE, tlv(SET, tlv(SEQUENCE, tlv(OID, CN), deep)))))
    assert s.issuer == "O=Test CA" and s.subject.startswith("CN=")


def test_many_indefinite_lengths() -> None:
    der = b"\x30\x80" * 50_000 + b"\x00\x00" * 50_000
    assert summarize(der) == nothing_read(der)


def test_random_garbage_never_raises() -> None:
    rng = random.Random(20210310)
    for i in range(5_000):
        der = rng.randbytes(rng.randrange(0, 400))
        if i % 2:
            der = b"\x30" + length(len(der)) + der  # garbage inside a plausible header
        s = summarize(der)
        assert isinstance(s, CertificateSummary) and s.sha256 == hashlib.sha256(der).hexdigest()


def _flip(rng: random.Random, d: bytearray) -> bytearray:
    if d:
        d[rng.randrange(len(d))] = rng.randrange(256)
    return d


def _insert(rng: random.Random, d: bytearray) -> bytearray:
    at = rng.randrange(len(d) + 1)
    d[at:at] = rng.randbytes(rng.randrange(1, 8))
    return d


def _delete(rng: random.Random, d: bytearray) -> bytearray:
    if d:
        at = rng.randrange(len(d))
        del d[at : at + rng.randrange(1, 8)]
    return d


def _length_byte(rng: random.Random, d: bytearray) -> bytearray:
    # Length bytes are where a reader goes wrong: put 0x80-0x84 or 0xff after a tag.
    starts = [i for i, b in enumerate(d[:-1]) if b in (SEQUENCE, SET, OID, OCTETS, 0xA3)]
    if starts:
        d[rng.choice(starts) + 1] = rng.choice([0x00, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF])
    return d


MUTATIONS: list[Callable[[random.Random, bytearray], bytearray]] = [_flip, _insert, _delete, _length_byte]


def test_mutated_certificates_never_raise(real_der: bytes) -> None:
    rng = random.Random(1)
    originals = [real_der, certificate(extensions=(san(tlv(0x82, b"a.example"), tlv(0x87, b"\x7f\x00\x00\x01")),))]
    changed = 0
    for i in range(4_000):
        der = bytearray(originals[i % 2])
        for _ in range(rng.randrange(1, 4)):
            der = rng.choice(MUTATIONS)(rng, der)
        data = bytes(der)
        s = summarize(data)
        assert s.sha256 == hashlib.sha256(data).hexdigest(), data.hex()
        changed += s != summarize(originals[i % 2])
    assert changed > 1_000  # the mutations did reach the reader


def test_hostile_field_contents_are_reported_not_raised() -> None:
    der = certificate(
        issuer=tlv(
            SEQUENCE,
            name((O, BMP, b"\x00A\x00"))[2:],  # an odd-length BMPString
            tlv(SET, tlv(SEQUENCE, tlv(OID, CN))),  # an attribute without a value: skipped
            name((O, PRINTABLE, b""))[2:],  # an empty value
        ),
        subject=name((CN, UTF8, b"\xff\xfe bad utf-8")),
        validity=tlv(SEQUENCE, tlv(UTCTIME, b"991332250000Z"), tlv(GENTIME, b"\x00\xff")),
        extensions=(
            san(
                tlv(0x82, "bücher.example".encode()),  # not ASCII
                tlv(0x87, b"\x01\x02\x03\x04\x05"),  # an IP of 5 bytes: not an address
                tlv(0x81, b"mail@example.test"),  # rfc822Name: not reported
                tlv(0x86, b"https://example.test/"),
            ),
        ),
    )
    s = summarize(der)
    assert s.issuer == "O=A\ufffd,O="
    assert s.subject == "CN=\ufffd\ufffd bad utf-8"
    assert s.not_before == "991332250000Z"  # no such date: reported as it was sent
    assert s.not_after == "\x00\ufffd"
    assert s.sans == ["DNS:b\ufffd\ufffdcher.example", "URI:https://example.test/"]


# ---------------------------------------------------------------------- found while testing


def test_oid_with_a_large_second_arc() -> None:
    der = certificate(subject=name((bytes([0x88, 0x37]), UTF8, b"x")))
    assert summarize(der).subject == "2.999=x"


def test_malformed_extension_loses_only_the_sans() -> None:
    broken_san = tlv(SEQUENCE, tlv(OID, SAN), tlv(OCTETS, b"\x30\x80"))  # indefinite length
    s = summarize(certificate(extensions=(broken_san,)))
    assert (s.subject, s.issuer, s.sans) == ("CN=example.test", "O=Test CA", [])


def test_huge_oid_arc_never_raises() -> None:
    huge = bytes([0x55]) + b"\xff" * 3_000 + b"\x7f"  # str() of this arc raises ValueError
    der = certificate(subject=name((huge, UTF8, b"x")))
    assert summarize(der).sha256 == hashlib.sha256(der).hexdigest()


def test_huge_oid_arc_loses_only_the_subject() -> None:
    huge = bytes([0x55]) + b"\xff" * 3_000 + b"\x7f"  # one arc of 21,007 bits: 6,324 digits
    s = summarize(certificate(subject=name((huge, UTF8, b"x"))))
    assert s.issuer == "O=Test CA" and s.not_before == "2024-01-01T00:00:00Z"


def test_a_uuid_oid_is_read_whole() -> None:
    """2.25.<128-bit UUID> (X.667): the longest OIDs met in practice still read."""
    uuid_int = 0x6FB3E2C4_1D7A_4B8E_9C2F_0A1B2C3D4E5F
    arc = []
    v = uuid_int
    while True:
        arc.append(v & 0x7F)
        v >>= 7
        if not v:
            break
    encoded = bytes([80 + 25]) + bytes(b | 0x80 for b in reversed(arc[1:])) + bytes([arc[0]])
    assert summarize(certificate(subject=name((encoded, UTF8, b"u")))).subject == f"2.25.{uuid_int}=u"


@pytest.mark.parametrize(
    "oid",
    [
        bytes([0x55]) + b"\x81" * 200 + b"\x01",  # longer than MAX_OID_BYTES
        bytes([0x55]) + b"\xff" * 40 + b"\x7f",  # one arc longer than MAX_ARC_BYTES
        bytes([0x55, 0x04, 0x83]),  # ends inside an arc
    ],
)
def test_an_oid_it_will_not_read_loses_only_its_name(oid: bytes) -> None:
    s = summarize(certificate(subject=name((oid, UTF8, b"x"))))
    assert s.subject == ""
    assert (s.issuer, s.not_before) == ("O=Test CA", "2024-01-01T00:00:00Z")
