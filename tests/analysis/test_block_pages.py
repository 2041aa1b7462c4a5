"""Block pages (issue 10): a 200 that carries another page than the site's is a failure,
by the comparison across regions (OONI's rules) and by the fingerprint file."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.analysis import Analyzer, Measurement, blockpage
from coordinator.analysis.blockpage import Body, FingerprintError
from coordinator.model import AgentInfo, ProbeResultData, TaskResultData
from coordinator.observe import measurement_from_result

URL = "http://news.example/"
SITE = Body(status=200, length=48_000, title="Example News: the stories of the day")
ISP = Body(status=200, length=900, title="Доступ ограничен", link_hosts=("warning.isp.example",))


def _m(at: float, group: str, agent: str, body: Body | None, failure: str | None = None,
       country: str = "", block_page: bool = False) -> Measurement:  # fmt: skip
    return Measurement(
        at=at, group=group, agent_id=agent, target=URL, kind="http", failure=failure,
        duration_s=0.2, body=body, country=country, block_page=block_page,
    )  # fmt: skip


def _rounds(a: Analyzer, pages: dict[str, Body], rounds: int = 2, countries: dict[str, str] | None = None,
            fingerprinted: frozenset[str] = frozenset(), start: int = 0) -> None:  # fmt: skip
    for r in range(start, start + rounds):
        for group, body in pages.items():
            for i in (1, 2):
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", body, country=(countries or {}).get(group, ""),
                         block_page=group in fingerprinted))  # fmt: skip


def _verdicts(a: Analyzer, now: float) -> dict[str, tuple[str, str]]:
    return {v.group: (v.verdict, v.failure) for v in a.evaluate(now).regions}


def _not_blocked(verdicts: dict[str, tuple[str, str]], groups: set[str]) -> bool:
    """Every one of ``groups`` was judged (no empty or partial evaluation passes), and
    judged reachable: a verdict, and not one that marks the page as a block page."""
    assert set(verdicts) == groups, verdicts
    assert all(verdict == "ok" and failure == "" for verdict, failure in verdicts.values()), verdicts
    return True


# ---------------------------------------------------------------- the comparison rules


def test_same_page_follows_oonis_length_proportion_and_title_match() -> None:
    assert blockpage.same_page(SITE, Body(status=200, length=40_000, title="other"))  # 0.83 > 0.7
    assert not blockpage.same_page(SITE, Body(status=200, length=30_000, title="other"))  # 0.625
    # lengths far apart but the same first long word of the title: a smaller variant
    assert blockpage.same_page(SITE, Body(status=200, length=9_000, title="Example News: tonight"))
    assert not blockpage.same_page(SITE, ISP)
    assert not blockpage.same_page(SITE, Body(status=404, length=48_000, title=SITE.title))
    assert blockpage.same_page(Body(status=200, length=0), Body(status=200, length=0))


def test_title_match_is_symmetric() -> None:
    assert blockpage.titles_match("News Example", "Newsroom Example") == blockpage.titles_match(
        "Newsroom Example", "News Example"
    )


def test_title_match_is_the_first_long_word_in_place() -> None:
    assert blockpage.titles_match("Twitter. It's what's happening", "twitter. it's new")
    assert not blockpage.titles_match("Blocked page", "Twitter home")
    assert not blockpage.titles_match("", "")  # no titles: no evidence of a match
    assert not blockpage.titles_match("a b c", "a b c d")  # no word of 5 letters to go by
    assert blockpage.titles_match("a b c", "A B C")  # but equal titles match


def test_a_page_that_differs_from_the_majority_is_a_block_page() -> None:
    a = Analyzer()
    _rounds(a, {"ru": ISP, "de": SITE, "us": SITE})
    v = _verdicts(a, 15.0)
    assert v["ru"] == ("blocked", "block_page")
    assert v["de"] == ("ok", "") and v["us"] == ("ok", "")
    ratios = {s.group: s.ratio for s in a.snapshot.success}
    assert ratios == {"ru": 0.0, "de": 1.0, "us": 1.0}


def test_a_dynamic_page_within_the_proportion_is_not_a_block_page() -> None:
    a = Analyzer()
    varied = Body(status=200, length=36_000, title="Новости дня")  # 0.75 of SITE, other language
    _rounds(a, {"ru": varied, "de": SITE, "us": SITE})
    assert _verdicts(a, 15.0)["ru"] == ("ok", "")


def test_two_regions_cannot_say_which_page_is_the_block_page() -> None:
    a = Analyzer()
    _rounds(a, {"ru": ISP, "de": SITE})
    v = _verdicts(a, 15.0)
    assert v["ru"][0] != "blocked" and v["de"][0] != "blocked"


def test_localised_pages_that_differ_everywhere_mark_nothing() -> None:
    a = Analyzer()
    pages = {
        g: Body(status=200, length=n, title=t)
        for g, n, t in (("ru", 9_000, "Главная"), ("de", 30_000, "Startseite"), ("us", 60_000, "Home page"))
    }
    _rounds(a, pages)
    assert {verdict for verdict, _ in _verdicts(a, 15.0).values()} == {"ok"}


def test_without_a_majority_nothing_is_marked() -> None:
    """Two regions see one page, two another: which is the block page is not known."""
    a = Analyzer()
    _rounds(a, {"ru": ISP, "by": ISP, "de": SITE, "us": SITE})
    assert _not_blocked(_verdicts(a, 15.0), {"ru", "by", "de", "us"})


def test_a_national_page_seen_by_most_groups_of_one_country_is_no_majority() -> None:
    """Judged per ASN: four Russian networks get the same ISP page, one German network
    the site. The four are a majority of groups, but of one country: nothing is marked
    by the comparison (so the German site is not called the block page)."""
    a = Analyzer()
    pages = {f"as{i}": ISP for i in range(4)} | {"as3320": SITE}
    countries = {f"as{i}": "RU" for i in range(4)} | {"as3320": "DE"}
    _rounds(a, pages, countries=countries)
    assert _not_blocked(_verdicts(a, 15.0), set(pages))


def test_one_group_without_a_country_does_not_open_the_one_country_rule() -> None:
    a = Analyzer()
    pages = {f"as{i}": ISP for i in range(4)} | {"as3320": SITE}
    countries = {"as0": "RU", "as1": "RU", "as2": "RU", "as3": "", "as3320": "DE"}
    _rounds(a, pages, countries=countries)
    assert _not_blocked(_verdicts(a, 15.0), set(pages))


def test_a_stray_block_page_in_a_majority_group_does_not_shield_another_group() -> None:
    """ru has one agent behind a blocking ISP and one not, so ru's latest page is the
    site's and ru is in the majority; by gets the block page on both agents. ru's stray
    block page is no reference (no other group of the majority saw it): by is blocked."""
    a = Analyzer()
    for r in range(2):
        for group, pages in {"ru": (ISP, SITE), "by": (ISP, ISP), "de": (SITE, SITE),
                             "us": (SITE, SITE), "br": (SITE, SITE)}.items():  # fmt: skip
            for i, body in enumerate(pages, start=1):
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", body))
    v = _verdicts(a, 15.0)
    assert v["by"] == ("blocked", "block_page")
    assert {v[g] for g in ("de", "us", "br")} == {("ok", "")}


def test_many_groups_with_a_dynamic_page_still_find_the_block_page() -> None:
    """70 groups, each with its own length of the page (within the 0.7 proportion), 3 of
    them with the block page: more distinct pages than seeds are tried, still found."""
    a = Analyzer()
    pages = {f"g{i}": Body(status=200, length=40_000 + 97 * i, title=SITE.title) for i in range(67)}
    pages |= {f"x{i}": ISP for i in range(3)}
    _rounds(a, pages)
    v = _verdicts(a, 15.0)
    assert {v[f"x{i}"] for i in range(3)} == {("blocked", "block_page")}
    assert {v[f"g{i}"] for i in range(67)} == {("ok", "")}


def test_fingerprinted_pages_take_no_part_in_the_majority() -> None:
    """Three regions get a page a fingerprint matched, one the site: the site is not the
    odd one out; the fingerprinted regions are blocked, the other is ok."""
    a = Analyzer()
    _rounds(a, {"ru": ISP, "by": ISP, "kz": ISP, "de": SITE, "us": SITE},
            fingerprinted=frozenset({"ru", "by", "kz"}))  # fmt: skip
    v = _verdicts(a, 15.0)
    assert v["de"] == ("ok", "") and v["us"] == ("ok", "")
    assert {v[g] for g in ("ru", "by", "kz")} == {("blocked", "block_page")}


def test_a_site_that_changes_its_page_marks_nothing() -> None:
    """The site changes its page everywhere at once: the window holds the old page and the
    new one in every group; each fetch matches a fetch of the majority's somewhere."""
    a = Analyzer()
    new = Body(status=200, length=9_000, title="Relaunched: a whole new site")
    _rounds(a, {"ru": SITE, "de": SITE, "us": SITE}, rounds=1)
    _rounds(a, {"ru": new, "de": new, "us": new}, rounds=1, start=1)
    assert {verdict for verdict, _ in _verdicts(a, 15.0).values()} == {"ok"}


def test_the_majority_judges_each_group_by_its_latest_page() -> None:
    """A block that is lifted: the region's latest page is the site's again, the old
    block pages leave the window, and the region recovers."""
    a = Analyzer()
    _rounds(a, {"ru": ISP, "de": SITE, "us": SITE})
    assert _verdicts(a, 15.0)["ru"] == ("blocked", "block_page")
    for r in range(2, 12):
        for group in ("ru", "de", "us"):
            for i in (1, 2):
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", SITE))
        v = _verdicts(a, r * 10.0 + 5)
    assert v["ru"] == ("ok", "")


# ---------------------------------------------------------------- fingerprints


def _body(**data: object) -> Body:
    found = Body.of({"method": "GET", "status": 200, "body_length": 100, **data})
    assert found is not None
    return found


def test_the_shipped_file_loads_and_its_entries_match_what_they_describe() -> None:
    shipped = blockpage.load()
    names = {fp.name for fp in shipped}
    assert {"ru.rostelecom-warning", "ir.iframe-10.10.34", "ru.rostelecom-block-system"} <= names
    assert all(fp.source for fp in shipped)
    hit = blockpage.match(shipped, _body(redirects=[{"url": URL, "status": 302, "location": "http://warning.rt.ru/?id=17"}]))
    assert hit is not None and hit.name == "ru.rostelecom-warning"
    assert blockpage.match(shipped, _body(redirects=[{"location": "http://warning.rt.ru.example.com/"}])) is None
    hit = blockpage.match(shipped, _body(redirects=[{"location": "https://www.warning.or.kr/x"}]))
    assert hit is not None and hit.name == "kr.warning"  # a subdomain of the block host
    hit = blockpage.match(shipped, _body(link_hosts=["10.10.34.34"]))
    assert hit is not None and hit.name == "ir.iframe-10.10.34"
    hit = blockpage.match(shipped, _body(title="BLOCK-SYSTEM"))
    assert hit is not None and hit.name == "ru.rostelecom-block-system"
    assert blockpage.match(shipped, _body(title="News of the day", link_hosts=["cdn.example"])) is None


def test_an_operator_file_adds_and_replaces_entries(tmp_path: Path) -> None:
    own = tmp_path / "own.toml"
    own.write_text(
        '[[fingerprint]]\nname = "lab.isp"\nfield = "title"\nmatch = "contains"\n'
        'pattern = "ограничен"\nsource = "our lab ISP page"\n'
        '[[fingerprint]]\nname = "kr.warning"\nfield = "header.server"\npattern = "x"\nsource = "replaced"\n',
        encoding="utf-8",
    )
    loaded = blockpage.load([own])
    by_name = {fp.name: fp for fp in loaded}
    assert by_name["kr.warning"].source == "replaced"
    assert len(loaded) == len(blockpage.load()) + 1
    assert blockpage.match(loaded, _body(title="Доступ ОГРАНИЧЕН")) is by_name["lab.isp"]
    assert blockpage.load([own], shipped=False) == (by_name["lab.isp"], by_name["kr.warning"])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fingerprint = 3", "array of tables"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'title'\npattern = 'x'", "fingerprint 1 (a).source"),
        ("[[fingerprint]]\nname = 'A b'\nfield = 'title'\npattern = 'x'\nsource = 's'", ".name"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'body'\npattern = 'x'\nsource = 's'", ".field: 'body'"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'title'\nmatch = 'regex'\npattern = 'x'\nsource = 's'", ".match"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'body_sha256'\npattern = 'abc'\nsource = 's'", "64 lower-case hex"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'title'\npattern = 'x'\nsource = 's'\ncolour = 1", "unknown key 'colour'"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'title'\npattern = 'x'\nsource = 's'\ncountries = ['ru']", ".countries"),
        ("[[fingerprint]]\nname='a'\nfield='title'\npattern='x'\nsource='s'\n" * 2, "used twice"),
        ("[fingerprints]\n", "unknown top-level key 'fingerprints'"),
        ("[[fingerprint]]\nname = 'a'\nfield = 'title'\nmatch = 'host'\npattern = 'x'\nsource = 's'", "host applies to"),
        ("= broken", "not TOML"),
    ],
)
def test_a_bad_fingerprint_file_is_refused_naming_the_entry_and_field(text: str, says: str) -> None:
    with pytest.raises(FingerprintError, match=None) as caught:
        blockpage.parse(text, "own.toml")
    assert says in str(caught.value) and str(caught.value).startswith("own.toml")


def test_a_malformed_location_matches_nothing_and_breaks_nothing() -> None:
    body = _body(redirects=[{"location": "http://[bad"}], headers={"location": "http://[x"})
    assert blockpage.match(blockpage.load(), body) is None


def test_body_of_untrusted_data_is_bounded_and_malformed_fields_give_none() -> None:
    big = _body(title="t" * 10_000, link_hosts=["H.example"] * 100, body_sha256="zz",
                headers={f"x-{i}": "v" for i in range(100)} | {"server": "s" * 9000},
                redirects=[{"location": "http://a.example/"}] * 100)  # fmt: skip
    assert len(big.title) == 256 and len(big.link_hosts) == 16 and big.link_hosts[0] == "h.example"
    assert big.headers == (("server", "s" * 512),)  # only what a fingerprint can name, bounded
    assert len(big.redirects) == 8
    assert big.sha256 == ""
    assert Body.of({"method": "HEAD", "status": 200, "body_length": 0}) is None
    assert Body.of({"status": "200", "body_length": 1}) is None
    assert Body.of({"status": 200, "body_length": 1, "link_hosts": "x"}) is None
    assert Body.of({"status": 200, "body_length": -1}) is None


def _result(data: dict[str, object], failure: str = "") -> TaskResultData:
    return TaskResultData(
        task_id="t1", job_id="j1", agent_id="ru-1", started_at=4.0,
        result=ProbeResultData(kind="http", target=URL, failure=failure, failure_detail="", duration_s=0.1, data=data),
        finished_at=5.0,
    )


def test_a_stored_result_matching_a_fingerprint_is_a_block_page_measurement() -> None:
    agent = AgentInfo(agent_id="ru-1", region="ru", country="RU", asn=12389)
    data = {"method": "GET", "status": 200, "body_length": 700, "title": "block-system"}
    m = measurement_from_result(_result(data), agent, URL, "region", fingerprints=blockpage.load())
    assert m.block_page and m.failed and m.body is not None and m.body.title == "block-system"
    plain = measurement_from_result(_result({**data, "title": "News"}), agent, URL, "region",
                                    fingerprints=blockpage.load())  # fmt: skip
    assert not plain.block_page and plain.body is not None
    failed = measurement_from_result(_result(data, "http_error"), agent, URL, "region",
                                     fingerprints=blockpage.load())  # fmt: skip
    assert failed.body is None and not failed.block_page  # an http_error is a failure already


def test_the_page_survives_the_wire_into_the_measurement() -> None:
    """What the agent sends (typed HttpData) is what the analysis compares: the ingest
    path reads the page's fields off the message (coordinator/convert.py)."""
    from coordinator.convert import probe_result_from_pb
    from protos.results import probe_result_to_pb

    sent = {
        "method": "GET", "status": 200, "body_length": 542, "title": "Доступ ограничен",
        "link_hosts": ["warning.rt.ru"], "refresh_url": "",
        "redirects": [{"url": URL, "status": 302, "location": "http://block.rt.ru/x"}],
        "headers": {"server": "nginx"}, "body_sha256": "ab" * 32,
    }  # fmt: skip
    wire = probe_result_to_pb(kind="http", target=URL, failure="", failure_detail="", duration_s=0.1, data=sent)
    got = probe_result_from_pb(wire)
    result = TaskResultData(task_id="t1", job_id="j1", agent_id="ru-1", started_at=4.0, result=got, finished_at=5.0)
    agent = AgentInfo(agent_id="ru-1", region="ru", country="RU", asn=12389)
    m = measurement_from_result(result, agent, URL, "region", fingerprints=blockpage.load())
    assert m.body == Body(
        status=200, length=542, sha256="ab" * 32, title="Доступ ограничен", link_hosts=("warning.rt.ru",),
        redirects=("http://block.rt.ru/x",), headers=(("server", "nginx"),),
    )  # fmt: skip
    assert m.block_page  # ru.rostelecom-block: the redirect to block.rt.ru
