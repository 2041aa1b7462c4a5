"""Block pages: an HTTP 200 that carries an ISP's "access restricted" page is a failure.

Two rules mark an http measurement as a block page (docs/detection.md "Block pages"):

1. **Fingerprints** (``match``): the page matches an entry of the fingerprint file that
   ships with Vantage (``blockpages.toml`` beside this module) or of an operator's own
   file (``vantage coordinator --block-pages FILE``). An entry names one feature of the
   response, how to compare it, and a pattern: Rostelecom's 302 to ``warning.rt.ru``, a
   ``<title>block-system</title>``, Iran's iframe to ``10.10.34.34``. Decided per
   measurement, when it is stored.
2. **Comparison across regions** (``mark``): in the analysis window, the page differs
   from the page that a majority of the regions see. "Differs" follows the rules OONI's
   web connectivity test documents and uses (``same_page``): the status differs, or the
   body lengths differ by more than 30 % (``min/max <= 0.7``) *and* the titles do not
   match. Decided at each evaluation over the window.

Everything here was sent by an agent and, before it, by a server neither trusts: a
``Body`` is built from bounded copies of the fields, and a malformed field leaves the
measurement without a body (it is then judged like any other http result).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

SHIPPED = Path(__file__).with_name("blockpages.toml")

# Comparison thresholds (docs/detection.md "Block pages" says why).
BODY_PROPORTION = 0.7  # OONI's body_length_match: min(len)/max(len) above this is a match
TITLE_WORD = 5  # OONI's title match looks at the first word at least this long
MIN_OTHER_GROUPS = 2  # agreeing other groups needed before a page is called different

_MAX_TEXT = 512
_MAX_ITEMS = 16
_MAX_REDIRECTS = 8
_SHA = re.compile(r"^[0-9a-f]{64}$")


def _bounded(value: object, limit: int = _MAX_TEXT) -> str:
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class Body:
    """What a successful http fetch returned, as far as the rules look at it."""

    status: int
    length: int
    sha256: str = ""
    title: str = ""
    link_hosts: tuple[str, ...] = ()
    refresh_url: str = ""
    redirects: tuple[str, ...] = ()  # the Location of every hop, then the final one's
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Body | None:
        """The body of an http result's data, or None when it has none to judge (HEAD,
        no status) or a field is not what the contract says."""
        status = data.get("status")
        length = data.get("body_length")
        if data.get("method", "GET") != "GET":
            return None
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            return None
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            return None
        hosts = data.get("link_hosts") or []
        redirects = data.get("redirects") or []
        headers = data.get("headers") or {}
        if not isinstance(hosts, list) or not isinstance(redirects, list) or not isinstance(headers, dict):
            return None
        locations = [_bounded(hop.get("location")) for hop in redirects[:_MAX_REDIRECTS] if isinstance(hop, dict)]
        if isinstance(headers.get("location"), str):
            locations.append(_bounded(headers["location"]))
        sha = data.get("body_sha256")
        return cls(
            status=status,
            length=length,
            sha256=sha if isinstance(sha, str) and _SHA.fullmatch(sha) else "",
            title=_bounded(data.get("title"), 256),
            link_hosts=tuple(_bounded(h, 253).lower() for h in hosts[:_MAX_ITEMS]),
            refresh_url=_bounded(data.get("refresh_url")),
            redirects=tuple(loc for loc in locations if loc),
            headers=tuple(
                (name, _bounded(headers[name]))
                for name in _HEADERS
                if isinstance(headers.get(name), str)
            ),
        )

    def values(self, where: str) -> list[str]:
        """The values of one feature a fingerprint can name (``FIELDS``)."""
        if where == "title":
            return [self.title] if self.title else []
        if where == "link_host":
            return list(self.link_hosts)
        if where == "refresh_url":
            return [self.refresh_url] if self.refresh_url else []
        if where == "redirect":
            return list(self.redirects)
        if where == "body_sha256":
            return [self.sha256] if self.sha256 else []
        name = where.removeprefix("header.")
        return [v for k, v in self.headers if k == name]


# ---------------------------------------------------------------------- fingerprints

FIELDS = ("title", "link_host", "refresh_url", "redirect", "body_sha256")
HEADER_FIELDS = ("header.server", "header.via", "header.x-cache", "header.content-type")
_HEADERS = tuple(f.removeprefix("header.") for f in HEADER_FIELDS)
Match = Literal["full", "prefix", "suffix", "contains", "host"]
MATCHES: tuple[Match, ...] = ("full", "prefix", "suffix", "contains", "host")
_HOST_FIELDS = ("link_host", "redirect", "refresh_url")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _host_of(url: str) -> str:
    """The host of a URL a server sent, "" when it has none or is malformed."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # "http://[bad": an untrusted Location must not stop the analysis
        return ""


class FingerprintError(ValueError):
    """A fingerprint file that cannot be used; the message names the entry and field."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Fingerprint:
    name: str
    field: str
    match: Match
    pattern: str
    source: str
    countries: tuple[str, ...] = ()

    def matches(self, body: Body) -> bool:
        pattern = self.pattern.lower()
        for value in body.values(self.field):
            value = value.lower()
            if self.match == "host":
                host = value if self.field == "link_host" else _host_of(value)
                if host == pattern or host.endswith("." + pattern):
                    return True
                continue
            if (
                (self.match == "full" and value == pattern)
                or (self.match == "prefix" and value.startswith(pattern))
                or (self.match == "suffix" and value.endswith(pattern))
                or (self.match == "contains" and pattern in value)
            ):
                return True
        return False


def _entry(raw: object, where: str) -> Fingerprint:
    if not isinstance(raw, dict):
        raise FingerprintError(f"{where}: must be a table")
    known = {"name", "field", "match", "pattern", "source", "countries"}
    extra = sorted(set(raw) - known)
    if extra:
        raise FingerprintError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")

    def text(key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise FingerprintError(f"{where}.{key}: must be a non-empty string")
        return value

    name = text("name")
    if not _NAME.fullmatch(name):
        raise FingerprintError(f"{where}.name: {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    where = f"{where} ({name})"
    feature = text("field")
    if feature not in FIELDS and feature not in HEADER_FIELDS:
        raise FingerprintError(f"{where}.field: {feature!r} is not one of {', '.join(FIELDS + HEADER_FIELDS)}")
    match = raw.get("match", "full")
    if match not in MATCHES:
        raise FingerprintError(f"{where}.match: {match!r} is not one of {', '.join(MATCHES)}")
    pattern = text("pattern")
    if len(pattern) > _MAX_TEXT:
        raise FingerprintError(f"{where}.pattern: longer than {_MAX_TEXT} characters")
    if match == "host" and feature not in _HOST_FIELDS:
        raise FingerprintError(f"{where}.match: host applies to {', '.join(_HOST_FIELDS)}, not {feature}")
    if feature == "body_sha256" and (match != "full" or not _SHA.fullmatch(pattern)):
        raise FingerprintError(f"{where}.pattern: a body_sha256 is 64 lower-case hex digits, matched in full")
    countries = raw.get("countries", [])
    if not isinstance(countries, list) or not all(isinstance(c, str) and _COUNTRY.fullmatch(c) for c in countries):
        raise FingerprintError(f"{where}.countries: must be a list of two-letter upper-case codes")
    return Fingerprint(
        name=name, field=feature, match=match, pattern=pattern, source=text("source"),
        countries=tuple(countries),
    )  # fmt: skip


def parse(text: str, origin: str) -> list[Fingerprint]:
    """The entries of one fingerprint file's text (``origin`` names it in errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FingerprintError(f"{origin}: not TOML: {exc}") from exc
    except RecursionError:  # tomllib recurses per nesting level
        raise FingerprintError(f"{origin}: not TOML this program reads: nested too deeply") from None
    extra = sorted(set(doc) - {"fingerprint"})
    if extra:
        raise FingerprintError(f"{origin}: unknown top-level key {extra[0]!r} (entries are [[fingerprint]])")
    entries = doc.get("fingerprint", [])
    if not isinstance(entries, list):
        raise FingerprintError(f"{origin}: fingerprint must be an array of tables ([[fingerprint]])")
    out = [_entry(raw, f"{origin}: fingerprint {i + 1}") for i, raw in enumerate(entries)]
    seen: set[str] = set()
    for fp in out:
        if fp.name in seen:
            raise FingerprintError(f"{origin}: fingerprint name {fp.name!r} is used twice")
        seen.add(fp.name)
    return out


def load(paths: Sequence[Path | str] = (), *, shipped: bool = True) -> tuple[Fingerprint, ...]:
    """The shipped fingerprints (unless ``shipped`` is False) and each file's, in order;
    an operator's entry replaces a shipped one of the same name."""
    sources = ([SHIPPED] if shipped else []) + [Path(p) for p in paths]
    by_name: dict[str, Fingerprint] = {}
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FingerprintError(f"{path}: cannot read: {exc}") from exc
        for fp in parse(text, str(path)):
            by_name[fp.name] = fp
    return tuple(by_name.values())


def match(fingerprints: Iterable[Fingerprint], body: Body) -> Fingerprint | None:
    """The first fingerprint the body matches."""
    for fp in fingerprints:
        if fp.matches(body):
            return fp
    return None


# ---------------------------------------------------------------------- comparison


def _first_long_word(title: str) -> tuple[int, str] | None:
    for i, word in enumerate(title.split()):
        if len(word) >= TITLE_WORD:
            return i, word.casefold()
    return None


def titles_match(a: str, b: str) -> bool:
    """OONI's title match, both ways round: the first word of at least ``TITLE_WORD``
    characters of one title is the word at the same place in the other (any case).
    Equal titles match; two titles without such a word (or without a title) do not."""
    if a.strip() and a.strip().casefold() == b.strip().casefold():
        return True
    for one, other in ((a, b), (b, a)):
        found = _first_long_word(one)
        if found is not None:
            words = other.split()
            if found[0] < len(words) and words[found[0]].casefold() == found[1]:
                return True
    return False


def same_page(a: Body, b: Body) -> bool:
    """Whether two fetches of one URL got the same page: the same status and either
    lengths within ``BODY_PROPORTION`` of each other or matching titles."""
    if a.status != b.status:
        return False
    longest = max(a.length, b.length)
    if longest == 0 or min(a.length, b.length) / longest > BODY_PROPORTION:
        return True
    return titles_match(a.title, b.title)


MAX_SEEDS = 64  # distinct pages tried as the majority's page (the most seen first)
MAX_REFERENCE_PAGES = 256  # distinct pages of the majority a fetch is compared with


def _key(body: Body) -> tuple[int, int, str]:
    return (body.status, body.length, body.title)


class _Same:
    """``same_page`` memoised by the pages' keys (it depends on nothing else)."""

    def __init__(self) -> None:
        self.memo: dict[tuple[tuple[int, int, str], tuple[int, int, str]], bool] = {}

    def __call__(self, a: Body, b: Body) -> bool:
        key = (_key(a), _key(b))
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = same_page(a, b)
        return found


def consensus(pages: Mapping[str, list[Body]], countries: Mapping[str, str], same: _Same | None = None) -> set[str]:
    """The majority: the largest set of groups whose latest page (the last of each list)
    matches that of one of them, when it is more than half of the groups with a page, at
    least 2, and not all of one declared country (a national censor's page is seen in
    one country; groups that declared none are left out of that test). Empty when there
    is none: the page differs everywhere, as localised pages do. At most ``MAX_SEEDS``
    distinct pages, the most seen first, are tried as the majority's page."""
    same = same or _Same()
    latest = {g: ps[-1] for g, ps in pages.items() if ps}
    count: dict[tuple[int, int, str], int] = {}
    first: dict[tuple[int, int, str], Body] = {}
    for body in latest.values():
        count[_key(body)] = count.get(_key(body), 0) + 1
        first.setdefault(_key(body), body)
    seeds = sorted(count, key=lambda k: (-count[k], k))[:MAX_SEEDS]
    best: set[str] = set()
    for k in seeds:
        members = {g for g, body in latest.items() if same(first[k], body)}
        if len(members) > len(best):
            best = members
    if len(best) * 2 <= len(latest) or len(best) < 2:
        return set()
    known = {countries.get(g, "") for g in best} - {""}
    if len(known) == 1:
        return set()
    return best


def mark(groups: dict[str, dict[str, dict[str, list[Any]]]]) -> int:
    """Mark, in place, the http measurements of one target (``groups``: group -> kind ->
    agent -> measurements) whose page matches none of the pages in the window of the
    majority's groups other than their own (``consensus``; at least ``MIN_OTHER_GROUPS``
    of them), as block pages. Pages already marked (a fingerprint) take no part in the
    majority. Returns how many were marked."""
    pages: dict[str, list[tuple[float, Body]]] = {}
    countries: dict[str, str] = {}
    for group, kinds in groups.items():
        for ms in kinds.get("http", {}).values():
            for m in ms:
                if m.body is not None and m.failure is None and m.body.status < 400 and not m.block_page:
                    pages.setdefault(group, []).append((m.at, m.body))
                    if m.country:
                        countries[group] = m.country
    ordered = {g: [b for _, b in sorted(ps, key=lambda p: p[0])] for g, ps in pages.items()}
    same = _Same()
    agreed = consensus(ordered, countries, same)
    if not agreed:
        return 0
    # The majority's distinct pages in the window, each with the groups that saw it. A page
    # counts as a reference only when another group of the majority saw the same page: a
    # stray block page of one agent in a majority group must not shield the same page
    # elsewhere.
    seen_by: dict[tuple[int, int, str], tuple[Body, set[str]]] = {}
    for g in agreed:
        for b in ordered[g]:
            seen_by.setdefault(_key(b), (b, set()))[1].add(g)
    common = sorted(seen_by, key=lambda k: (-len(seen_by[k][1]), k))[:MAX_REFERENCE_PAGES]
    references: list[tuple[Body, set[str]]] = []
    for k in common:
        page, where = seen_by[k]
        groups_alike = set(where)
        for j in common:
            if j != k and same(page, seen_by[j][0]):
                groups_alike |= seen_by[j][1]
        if len(groups_alike) >= 2:
            references.append((page, groups_alike))

    def matches_others(group: str, body: Body) -> bool:
        return any(where - {group} and same(body, page) for page, where in references)

    marked = 0
    for group, kinds in groups.items():
        by_agent = kinds.get("http")
        others = [g for g in agreed if g != group]
        if not by_agent or len(others) < MIN_OTHER_GROUPS:
            continue
        for agent, ms in by_agent.items():
            new = []
            for m in ms:
                if (
                    not m.block_page
                    and m.body is not None
                    and m.failure is None
                    and m.body.status < 400
                    and not matches_others(group, m.body)
                ):
                    m = replace(m, block_page=True)
                    marked += 1
                new.append(m)
            by_agent[agent] = new
    return marked
