"""Just enough DER to describe a leaf certificate: subject, issuer, SANs, validity.

The TLS probe reports the certificate even when verification is off, and Python's
``ssl`` only decodes a certificate that verified. Rather than adding a dependency to the
agent, this reads the few X.509 fields the probe reports straight from the DER bytes
(RFC 5280, section 4.1). Anything it cannot read is reported as missing, never raised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field

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
    if not raw:
        return ""
    parts = [str(raw[0] // 40), str(raw[0] % 40)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


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


def summarize(der: bytes) -> CertificateSummary:
    """Describe a DER certificate; fields that cannot be read stay empty."""
    fingerprint = hashlib.sha256(der).hexdigest()
    try:
        _tag, c_start, c_end = _tlv(der, 0)
        _tbs_tag, t_start, t_end = _children(der, c_start, c_end)[0]
        fields = _children(der, t_start, t_end)
        if fields and fields[0][0] == 0xA0:  # explicit [0] version
            fields = fields[1:]
        # serial, signature algorithm, issuer, validity, subject, spki, [1], [2], [3]
        issuer = _name(der, fields[2][1], fields[2][2])
        validity = _children(der, fields[3][1], fields[3][2])
        subject = _name(der, fields[4][1], fields[4][2])
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
        return CertificateSummary(
            subject=subject,
            issuer=issuer,
            sans=sans,
            not_before=_time(validity[0][0], der[validity[0][1] : validity[0][2]]),
            not_after=_time(validity[1][0], der[validity[1][1] : validity[1][2]]),
            sha256=fingerprint,
        )
    except (DERError, IndexError, ValueError):
        return CertificateSummary(sha256=fingerprint)
