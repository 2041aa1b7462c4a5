"""Features of an HTTP body that tell a block page from the page asked for.

The http probe reports these beside the body's length and SHA-256; the coordinator
compares them across regions and with its fingerprint file
(``coordinator/analysis/blockpage.py``, docs/detection.md "Block pages"). They are read
from the first bytes of the body only (the ones the hash covers, at most
``MAX_SCAN_BYTES``), because a block page is small and says what it is near the top.

- ``title``: the text of the first ``<title>``, entities decoded, white space collapsed,
  at most ``MAX_TITLE`` characters. OONI's web connectivity compares titles too: an
  ISP's page has its own ("Access restricted", "block-system"), the real page its own.
- ``link_hosts``: the distinct host names and address literals of the absolute
  ``http(s)://`` URLs in the body, in the order they first appear, at most
  ``MAX_HOSTS``. Block pages link, frame or script to the ISP's or regulator's block
  host (Iran's ``10.10.34.34`` iframe, ``warning.rt.ru``, ``internet-positif.org``): the
  one feature most of OONI's body fingerprints come down to.
- ``refresh_url``: where a ``<meta http-equiv="refresh">`` sends the browser, at most
  ``MAX_URL`` characters: a 200 page that forwards at once to a block host.

Everything here comes from a server the agent does not trust: each value is bounded,
and a host that is not a plausible name or address is left out rather than reported.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

MAX_SCAN_BYTES = 64 * 1024
MAX_TITLE = 256
MAX_HOSTS = 16
MAX_URL = 512

# Tags are found with bytes.find over a lower-cased copy, each within a bounded span, not
# with patterns like <title[^>]*>(.*?)</title: on a hostile body with no closing tag those
# take time quadratic in its length (64 KiB of "<title>" took 7 s), on the agent's loop.
_TAG_SPAN = 2048  # the most a tag's attributes may take
_MAX_METAS = 64
_URL_HOST = re.compile(rb"https?://([A-Za-z0-9._\-]{1,253})", re.IGNORECASE)
_HOST_OK = re.compile(r"^[a-z0-9]([a-z0-9\-]{0,62})(\.[a-z0-9]([a-z0-9\-]{0,62}))*$")
_REFRESH = re.compile(rb"http-equiv\s*=\s*[\"']?\s*refresh", re.IGNORECASE)
_CONTENT = re.compile(rb"content\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_REFRESH_URL = re.compile(r"^\s*\d*(?:\.\d*)?\s*[;,]?\s*(?:url\s*=\s*)?(.*)$", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Features:
    title: str = ""
    link_hosts: tuple[str, ...] = ()
    refresh_url: str = ""


def _text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know: the server's word only
        return raw.decode("utf-8", errors="replace")


def _clean(text: str, limit: int) -> str:
    text = _SPACE.sub(" ", html.unescape(text)).strip()
    # no control characters in what is stored and printed
    text = "".join(ch for ch in text if ch.isprintable())
    return text[:limit]


def _hosts(head: bytes) -> tuple[str, ...]:
    out: list[str] = []
    for match in _URL_HOST.finditer(head):
        host = match.group(1).decode("ascii").lower().strip(".")
        if host and host not in out and _HOST_OK.fullmatch(host):
            out.append(host)
            if len(out) >= MAX_HOSTS:
                break
    return tuple(out)


def _title(head: bytes, lower: bytes, charset: str | None) -> str:
    start = lower.find(b"<title")
    if start < 0:
        return ""
    end_of_tag = lower.find(b">", start, start + _TAG_SPAN)
    if end_of_tag < 0:
        return ""
    close = lower.find(b"</title", end_of_tag)  # one search: linear
    if close < 0:
        return ""
    return _clean(_text(head[end_of_tag + 1 : close], charset), MAX_TITLE)


def _metas(head: bytes, lower: bytes) -> list[bytes]:
    out: list[bytes] = []
    at = lower.find(b"<meta")
    while at >= 0 and len(out) < _MAX_METAS:
        end = lower.find(b">", at, at + _TAG_SPAN)
        if end < 0:  # a tag too long to be a refresh (a long CSP meta): look past it
            at = lower.find(b"<meta", at + 5)
            continue
        out.append(head[at : end + 1])
        at = lower.find(b"<meta", end)
    return out


def _refresh(head: bytes, lower: bytes, charset: str | None) -> str:
    for tag in _metas(head, lower):
        if not _REFRESH.search(tag):
            continue
        content = _CONTENT.search(tag)
        if content is None:
            continue
        value = _text(content.group(1).strip(b"\"'"), charset)
        found = _REFRESH_URL.match(html.unescape(value))
        url = found.group(1).strip().strip("\"'") if found else ""
        return _clean(url, MAX_URL)
    return ""


def features(body_head: bytes, charset: str | None = None) -> Features:
    """The features of a body whose first bytes are ``body_head`` (only the first
    ``MAX_SCAN_BYTES`` are read), decoded with ``charset`` where the text needs it."""
    head = body_head[:MAX_SCAN_BYTES]
    lower = head.lower()
    return Features(
        title=_title(head, lower, charset),
        link_hosts=_hosts(head),
        refresh_url=_refresh(head, lower, charset),
    )
