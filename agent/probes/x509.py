"""Just enough DER to describe a leaf certificate: subject, issuer, SANs, validity.

The TLS probe reports the certificate even when verification is off, and Python's
``ssl`` only decodes a certificate that verified. Rather than adding a dependency to the
agent, this reads the few X.509 fields the probe reports straight from the DER bytes
(RFC 5280, section 4.1). Anything it cannot read is reported as missing, never raised:
each field (subject, issuer, validity, SANs) is read on its own, so one malformed part
loses only itself. The bytes come from a probed, possibly hostile, server: every length is
checked against the data, and OIDs are bounded (``MAX_OID_BYTES``, ``MAX_ARC_BYTES``) so no
input makes the parser slow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

_OID_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.25": "DC",
}
_OID_SAN = "2.5.29.17"
T = TypeVar("T")
# Longer OIDs, or longer arcs, are not read (DERError). Real ones are far shorter; a UUID
# arc (2.25.<128-bit number>) takes 19 bytes.
MAX_OID_BYTES = 128
MAX_ARC_BYTES = 20


class DERError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class CertificateSummary:
    subject: str = ""
    issuer: str = ""
    sans: list[str] = field(default_factory=list)
    not_before: str = ""
    not_after: str = ""
    sha256: str = ""

    def to_data(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": list(self.sans),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "sha256": self.sha256,
        }


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at ``pos``."""
    if pos + 2 > len(data):
        raise DERError("truncated")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DERError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise DERError("truncated value")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend = _tlv(data, pos)
        out.append((tag, vstart, vend))
        pos = vend
    return out


def _oid(raw: bytes) -> str:
    """Dotted text of an OID's content octets (X.690 8.19). The first subidentifier holds
    the first two arcs: X*40+Y for X in 0 or 1, 80+Y for X = 2, where Y may be large."""
    if not raw:
        return ""
    if len(raw) > MAX_OID_BYTES:
        raise DERError("OID too long")
    arcs: list[int] = []
    value = 0
    size = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        size += 1
        if size > MAX_ARC_BYTES:
            raise DERError("OID arc too long")
        if not byte & 0x80:
            arcs.append(value)
            value = 0
            size = 0
    if size:
        raise DERError("OID ends inside an arc")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in [*head, *arcs[1:]])


def _string(tag: int, raw: bytes) -> str:
    if tag == 0x1E:  # BMPString
        return raw.decode("utf-16-be", "replace")
    return raw.decode("utf-8", "replace")


def _name(data: bytes, start: int, end: int) -> str:
    parts = []
    for _set_tag, s_start, s_end in _children(data, start, end):
        for _seq_tag, a_start, a_end in _children(data, s_start, s_end):
            attrs = _children(data, a_start, a_end)
            if len(attrs) != 2:
                continue
            oid = _oid(data[attrs[0][1] : attrs[0][2]])
            value = _string(attrs[1][0], data[attrs[1][1] : attrs[1][2]])
            parts.append(f"{_OID_NAMES.get(oid, oid)}={value}")
    return ",".join(parts)


def _time(tag: int, raw: bytes) -> str:
    text = raw.decode("ascii", "replace")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    try:
        moment = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sans(data: bytes, start: int, end: int) -> list[str]:
    _tag, seq_start, seq_end = _tlv(data, start)
    out = []
    for name_tag, n_start, n_end in _children(data, seq_start, seq_end):
        raw = data[n_start:n_end]
        if name_tag == 0x82:  # dNSName
            out.append("DNS:" + raw.decode("ascii", "replace"))
        elif name_tag == 0x87 and len(raw) in (4, 16):  # iPAddress
            out.append("IP:" + str(ipaddress.ip_address(raw)))
        elif name_tag == 0x86:  # URI
            out.append("URI:" + raw.decode("ascii", "replace"))
    return out


_READ_ERRORS = (DERError, IndexError, ValueError)


def _certificate_fields(der: bytes) -> list[tuple[int, int, int]]:
    """The TBSCertificate's fields after the optional version: serial, signature
    algorithm, issuer, validity, subject, key, then the optional [1], [2], [3]."""
    _tag, c_start, c_end = _tlv(der, 0)
    _tbs_tag, t_start, t_end = _children(der, c_start, c_end)[0]
    fields = _children(der, t_start, t_end)
    if fields and fields[0][0] == 0xA0:  # explicit [0] version
        fields = fields[1:]
    return fields


def _extensions_sans(der: bytes, fields: list[tuple[int, int, int]]) -> list[str]:
    sans: list[str] = []
    for tag, e_start, _e_end in fields[6:]:
        if tag != 0xA3:
            continue
        _seq, x_start, x_end = _tlv(der, e_start)
        for _ext_tag, ext_start, ext_end in _children(der, x_start, x_end):
            parts = _children(der, ext_start, ext_end)
            if _oid(der[parts[0][1] : parts[0][2]]) == _OID_SAN:
                value = parts[-1]
                sans = _sans(der, value[1], value[2])
    return sans


def _or_none(reader: Callable[[], T]) -> T | None:
    """``reader()``, or None when the bytes it reads are malformed."""
    try:
        return reader()
    except _READ_ERRORS:
        return None


def summarize(der: bytes) -> CertificateSummary:
    """Describe a DER certificate; fields that cannot be read stay empty."""
    fingerprint = hashlib.sha256(der).hexdigest()
    fields = _or_none(lambda: _certificate_fields(der))
    if fields is None:
        return CertificateSummary(sha256=fingerprint)
    validity = _or_none(lambda: _children(der, fields[3][1], fields[3][2])) or []

    def moment(i: int) -> str:
        return _or_none(lambda: _time(validity[i][0], der[validity[i][1] : validity[i][2]])) or ""

    return CertificateSummary(
        subject=_or_none(lambda: _name(der, fields[4][1], fields[4][2])) or "",
        issuer=_or_none(lambda: _name(der, fields[2][1], fields[2][2])) or "",
        sans=_or_none(lambda: _extensions_sans(der, fields)) or [],
        not_before=moment(0),
        not_after=moment(1),
        sha256=fingerprint,
    )
