"""The built-in dashboard: its numbers over a real sqlite index, its HTTP API, and `finsentinel dashboard`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from alerting.dashboard import data
from alerting.dashboard.app import create_app
from alerting.dashboard.serve import _loopback, bind
from alerting.index import open_index
from alerting.index.sqlite import SqliteIndex
from alerting.views import parse_time, safe_url
from finsentinel.errors import ConfigError, IndexStoreError
from finsentinel.settings import IndexSettings
from tests.contract.index import T0, make_alert, scored

NAMES = {"aurora-motors": "Aurora Motors", "pacific-grid": "Pacific Grid Energy"}


def _history() -> list[Any]:
    """Two hours of items: Aurora's turn negative in the second hour; one Pacific item has a bad link."""
    rows = [scored(n, f"Aurora update {n}", minutes=n, entities=["aurora-motors"],
                   sentiment="negative" if n >= 60 else "neutral", topic="autos") for n in range(0, 120, 10)]
    rows += [scored(500 + n, f"Grid note {n}", minutes=n, entities=["pacific-grid"], topic="energy",
                    sentiment="positive") for n in range(0, 120, 30)]
    bad = scored(999, "Grid outage", minutes=115, entities=["pacific-grid"], topic="energy", sentiment="negative")
    return [*rows, bad.model_copy(update={"url": "javascript:alert(1)"})]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    idx = SqliteIndex(tmp_path / "index.sqlite3")
    idx.upsert(_history())
    idx.upsert_alerts([make_alert("entity", "aurora-motors", start=T0 + timedelta(hours=1), hours=1)])
    yield idx
    idx.close()


@pytest.fixture
def client(index: SqliteIndex) -> TestClient:
    return TestClient(create_app(index, NAMES))


# -- the numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-03", datetime(2026, 3, 3, tzinfo=UTC)),
    ("2026-03-03T09:30", datetime(2026, 3, 3, 9, 30, tzinfo=UTC)),
    ("2026-03-03T17:30:00+08:00", datetime(2026, 3, 3, 9, 30, tzinfo=UTC)),
    ("2026-03-03T09:30:00Z", datetime(2026, 3, 3, 9, 30, tzinfo=UTC)),
    ("", None), (None, None),
])
def test_times_are_read_as_utc(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text, "start") == expected


def test_a_bad_time_says_what_was_expected() -> None:
    with pytest.raises(ConfigError, match=r"start: expected an ISO 8601 date or time .* got 'yesterday'"):
        parse_time("yesterday", "start")


@pytest.mark.parametrize(("span", "width"), [
    (timedelta(hours=2), 5), (timedelta(days=1), 15), (timedelta(days=7), 60), (timedelta(days=60), 360),
    (timedelta(days=365), 10080), (timedelta(days=4000), 3 * 10080), (timedelta(days=3_650_000), 2173 * 10080),
])
def test_the_chart_bucket_keeps_a_range_within_the_bucket_limit(span: timedelta, width: int) -> None:
    # past the widest choice, whole multiples of it: years of range are still at most MAX_BUCKETS bars
    assert data.bucket_for(span) == width
    assert span / timedelta(minutes=width) <= data.MAX_BUCKETS


def test_the_default_range_ends_at_the_newest_item_not_the_clock(index: SqliteIndex) -> None:
    rng = data.resolve_range(index, None, None)
    # from the first day with items (T0's) to the newest item (T0 + 115 min), widened to the bucket
    assert rng == data.Range(datetime(2026, 3, 2, tzinfo=UTC), T0 + timedelta(hours=2), 5)
    index.upsert([scored(900, minutes=-6 * 1440), scored(901, minutes=-30 * 1440)])
    rng = data.resolve_range(index, None, None)
    assert rng == data.Range(datetime(2026, 2, 24, tzinfo=UTC), T0 + timedelta(hours=2), 60)  # not 30 days back


def test_an_empty_index_opens_on_the_last_week(tmp_path: Path) -> None:
    rng = data.resolve_range(SqliteIndex(tmp_path / "empty.sqlite3"), None, None)
    assert abs(rng.end - datetime.now(UTC)) < timedelta(hours=2)


def test_a_start_after_the_newest_item_shows_that_day_empty(index: SqliteIndex) -> None:
    later = T0 + timedelta(days=30)
    assert data.resolve_range(index, later, None) == data.Range(later, later + timedelta(days=1), 15)


def test_an_inverted_range_is_refused(index: SqliteIndex) -> None:
    with pytest.raises(ConfigError, match="expected start before end"):
        data.resolve_range(index, T0, T0 - timedelta(hours=1))


def test_overview_counts_every_item_once_and_ranks_companies_by_negatives(index: SqliteIndex) -> None:
    rng = data.resolve_range(index, T0, T0 + timedelta(hours=2))
    view = data.overview(index, rng, NAMES)
    assert view["totals"] == {"items": 17, "negative": 7, "positive": 4, "share": round(7 / 17, 3),
                              "positive_share": round(4 / 17, 3), "net": round(-3 / 17, 3),
                              "alerts": 1, "open_alerts": 1}
    assert [(c["name"], c["total"], c["negative"], c["positive"], c["net"]) for c in view["companies"]] == [
        ("Aurora Motors", 12, 6, 0, -0.5), ("Pacific Grid Energy", 5, 1, 4, 0.6)]
    assert sum(b["positive"] for b in view["series"]) == 4
    assert [(t["key"], t["negative"]) for t in view["topics"]] == [("autos", 6), ("energy", 1)]
    assert rng.bucket_minutes == 5 and len(view["series"]) == 24  # zero buckets included
    assert sum(b["total"] for b in view["series"]) == 17
    assert view["alerts"][0]["entity_name"] == "Aurora Motors"


def test_the_alert_totals_count_every_alert_of_the_range_not_only_those_listed(index: SqliteIndex) -> None:
    index.upsert_alerts([make_alert("entity", f"co-{n}", start=T0) for n in range(25)])
    view = data.overview(index, data.Range(T0, T0 + timedelta(hours=2), 5), NAMES)
    assert view["totals"]["alerts"] == 26 and view["totals"]["open_alerts"] == 26
    assert len(view["alerts"]) == 20  # the list stays at its limit


def test_leaders_sum_a_range_that_straddles_the_wide_bucket(index: SqliteIndex) -> None:
    # a range not aligned to its own width falls into two epoch-aligned buckets: both are summed
    rng = data.Range(T0 + timedelta(minutes=35), T0 + timedelta(minutes=95), 5)
    rows = data.leaders(index, rng, "entity", NAMES, 10)
    assert {r["key"]: r["total"] for r in rows} == {"aurora-motors": 6, "pacific-grid": 2}


def test_a_series_for_one_company_holds_only_its_items(index: SqliteIndex) -> None:
    rng = data.Range(T0, T0 + timedelta(hours=2), 60)
    got = data.series(index, rng, "entity", "aurora-motors")
    assert [(b["total"], b["negative"]) for b in got] == [(6, 0), (6, 6)]


@pytest.mark.parametrize(("url", "kept"), [
    ("https://news.example/1", True), ("HTTP://news.example/1", True), ("javascript:alert(1)", False),
    ("data:text/html,hi", False), ("//news.example/1", False), ("https://", False), (None, False),
])
def test_only_http_links_reach_the_page(url: str | None, kept: bool) -> None:
    assert (safe_url(url) is not None) is kept


# -- the HTTP API -------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self' covers it
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)  # nothing from another host


def test_no_page_the_app_serves_needs_what_its_policy_forbids(client: TestClient) -> None:
    # the policy allows only the app's own files: a page with CDN or inline scripts would be blank
    for path in [getattr(r, "path", "") for r in client.app.routes]:  # type: ignore[attr-defined]
        if "{" in path or path.startswith("/static"):
            continue
        page = client.get(path)
        if page.headers.get("content-type", "").startswith("text/html"):
            assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text), path
            assert "<script>" not in page.text, path


def test_overview_over_http(client: TestClient) -> None:
    body = client.get("/api/overview", params={"start": "2026-03-02T09:00Z", "end": "2026-03-02T11:00Z"}).json()
    assert body["totals"]["items"] == 17
    assert body["companies"][0]["key"] == "aurora-motors"
    assert body["range"] == {"start": "2026-03-02T09:00:00+00:00", "end": "2026-03-02T11:00:00+00:00",
                             "bucket_minutes": 5}


def test_a_range_of_centuries_is_still_a_chart_of_few_bars(client: TestClient) -> None:
    body = client.get("/api/overview", params={"start": "1900-01-01", "end": "2100-01-01"}).json()
    assert len(body["series"]) <= data.MAX_BUCKETS
    assert body["totals"]["items"] == 17 and sum(b["total"] for b in body["series"]) == 17


def test_items_filter_and_drop_unsafe_links(client: TestClient) -> None:
    got = client.get("/api/items", params={"entity": "pacific-grid", "sentiment": "negative"}).json()["items"]
    assert [(i["title"], i["url"]) for i in got] == [("Grid outage", None)]
    assert got[0]["entities"] == [{"id": "pacific-grid", "name": "Pacific Grid Energy"}]
    words = client.get("/api/items", params={"q": "aurora update 11"}).json()["items"]
    assert [i["title"] for i in words] == ["Aurora update 110"]


def test_series_and_alerts_by_scope(client: TestClient) -> None:
    span = {"start": "2026-03-02T09:00Z", "end": "2026-03-02T11:00Z"}
    topic = client.get("/api/series", params={"scope": "topic", "key": "energy", **span}).json()
    assert sum(b["total"] for b in topic["series"]) == 5
    assert client.get("/api/alerts", params={"scope": "entity", "key": "pacific-grid", **span}).json() == {"alerts": []}
    assert len(client.get("/api/alerts", params={"scope": "entity", **span}).json()["alerts"]) == 1


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/api/series", {"scope": "entity"}, "scope 'entity' needs a key"),
    ("/api/overview", {"start": "soon"}, "start: expected an ISO 8601"),
    ("/api/overview", {"start": "2026-03-03", "end": "2026-03-02"}, "expected start before end"),
    ("/api/overview", {"start": "0001-01-01"}, "between years 1 and 9999"),
    ("/api/overview", {"end": "0001-01-03"}, "between years 1 and 9999"),
    ("/api/series", {"start": "2026-01-01", "end": "9999-12-31T23:00Z"}, "between years 1 and 9999"),
    ("/api/items", {"limit": 100_000}, "less than or equal to 500"),
    ("/api/items", {"sentiment": "bearish"}, "'negative', 'neutral' or 'positive'"),
])
def test_bad_requests_say_what_was_expected(client: TestClient, path: str, params: dict[str, Any],
                                            message: str) -> None:
    resp = client.get(path, params=params)
    assert resp.status_code == 422
    assert message in str(resp.json()["detail"])


def test_with_credentials_everything_but_the_health_check_needs_them(index: SqliteIndex) -> None:
    client = TestClient(create_app(index, NAMES, credentials=("desk", "s3cret:pass")))
    for path in ("/", "/static/dashboard.js", "/api/overview", "/api/openapi.json"):
        resp = client.get(path)
        assert resp.status_code == 401, path
        assert resp.headers["www-authenticate"].startswith('Basic realm="FinSentinel"')
    assert client.get("/", auth=("desk", "wrong")).status_code == 401
    assert client.get("/", auth=("other", "s3cret:pass")).status_code == 401
    assert client.get("/", headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    assert client.get("/", auth=("desk", "s3cret:pass")).status_code == 200  # a colon inside the password is fine
    assert client.get("/api/overview", auth=("desk", "s3cret:pass")).json()["totals"]["items"] == 17
    assert client.get("/healthz").status_code == 200  # for load balancers and compose health checks


def test_dashboard_credentials_come_in_pairs_and_stay_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from finsentinel.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsentinel.yaml").write_text("alerting:\n  dashboard:\n    username: desk\n", encoding="utf-8")
    assert main(["config", "show"]) == 2
    assert "alerting.dashboard" in capsys.readouterr().err
    monkeypatch.setenv("FINSENTINEL_ALERTING__DASHBOARD__PASSWORD", "hunter2-secret")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "desk" in out and "hunter2-secret" not in out


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False),  # noqa: S104 - a host to judge, not to bind
                                                ("10.1.2.3", False), ("dash.internal", False)])
def test_a_dashboard_off_loopback_without_a_password_is_warned_about(host: str, loopback: bool) -> None:
    assert _loopback(host) is loopback


class _DownIndex(SqliteIndex):
    """A sqlite index whose every read fails as a lost connection would."""

    def query(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise IndexStoreError("sqlite index: query failed: disk I/O error")

    def count(self) -> int:
        raise IndexStoreError("sqlite index: count failed: disk I/O error")


def test_an_index_failure_is_a_503_with_the_reason(tmp_path: Path) -> None:
    client = TestClient(create_app(_DownIndex(tmp_path / "x.sqlite3"), NAMES))
    for path in ("/api/overview", "/healthz"):
        resp = client.get(path)
        assert resp.status_code == 503 and "disk I/O error" in resp.json()["detail"]


# -- serving --------------------------------------------------------------------------------------


def test_a_missing_sqlite_index_is_refused_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "index.sqlite3"
    with pytest.raises(ConfigError, match="no sqlite index at .*run `finsentinel alert`"):
        open_index(IndexSettings(path=path))
    assert not path.parent.exists()


def test_a_sqlite_file_that_is_not_an_index_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    other = tmp_path / "ingest.sqlite3"  # beside index.sqlite3 in a workspace: an easy slip of --index
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE seen (id TEXT)")
    db.close()
    with pytest.raises(ConfigError, match="ingest.sqlite3 is not a FinSentinel index"):
        open_index(IndexSettings(path=other))
    with sqlite3.connect(other) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    db.close()
    assert tables == ["seen"]
    (tmp_path / "notes.txt").write_text("not a database at all " * 100)
    with pytest.raises(ConfigError, match="notes.txt is not a FinSentinel index"):
        open_index(IndexSettings(path=tmp_path / "notes.txt"))


def test_a_port_in_use_says_how_to_choose_another() -> None:
    first = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1:.*choose another with --port"):
            bind("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()


def test_a_port_out_of_range_says_how_to_choose_another() -> None:
    with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1:70000: .*choose another with --port"):
        bind("127.0.0.1", 70_000)


def _finsentinel(args: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "finsentinel.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def _serving(index_path: Path, cwd: Path) -> Iterator[str]:
    """``finsentinel dashboard`` on a free port; yields its address, then stops it with Ctrl-C."""
    proc = _finsentinel(["dashboard", "--index", str(index_path), "--port", "0"], cwd)
    try:
        assert proc.stderr is not None
        line = ""
        while "dashboard: http://" not in line:
            line = proc.stderr.readline()
            assert line, "the dashboard exited before it served"
        yield re.search(r"(http://\S+/)", line).group(1)  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130), err


def test_finsentinel_dashboard_serves_an_index_until_interrupted(index: SqliteIndex, tmp_path: Path) -> None:
    with _serving(index.path, tmp_path) as url:
        assert httpx.get(url + "healthz", timeout=10).json() == {"ok": True, "items": 17}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: install Debian's chromium (.ci/run does) to run "
                    "the dashboard page in a headless browser")
def test_the_page_renders_a_company_view_in_a_browser_and_keeps_news_text_inert(
        index: SqliteIndex, tmp_path: Path) -> None:
    hostile = scored(777, '<img src=x onerror="document.title=1">Aurora memo', minutes=100,
                     entities=["aurora-motors"], topic="autos", sentiment="negative")
    index.upsert([hostile])
    with _serving(index.path, tmp_path) as url:
        dom = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
             "--dump-dom", url + "#entity=aurora-motors"],
            capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Company: Aurora Motors" in dom  # the linked view was opened
    assert "12 negative of 15 against 1.5 expected" in dom  # its alert, drawn from /api/alerts
    assert dom.count('"><td>2026-03-02') == 13  # its 13 items, from /api/items
    assert '<tr title="id item-000777"><td>' in dom  # each row shows the id `finsentinel label` takes
    assert "Grid outage" not in dom  # another company's item
    assert "&lt;img src=x" in dom and "<img" not in dom  # a title is text, never markup
    assert 'href="javascript:' not in dom


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: install Debian's chromium (.ci/run does) to run "
                    "the dashboard page in a headless browser")
def test_a_chart_of_one_bar_draws_its_alert_window_and_time_label_inside_it(tmp_path: Path) -> None:
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    index = SqliteIndex(tmp_path / "one.sqlite3")
    index.upsert([scored(1, minutes=-9 * 60 + 2)])  # 00:02, alone: the page opens on one 5-minute bar
    alert = make_alert("overall", None, start=midnight, hours=1)
    index.upsert_alerts([alert.model_copy(update={"end": midnight + timedelta(minutes=1)})])
    index.close()
    with _serving(tmp_path / "one.sqlite3", tmp_path) as url:
        dom = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
             "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "bars of 5 minutes" in dom
    width = float(re.search(r'viewBox="0 0 ([\d.]+) 220"', dom).group(1))  # type: ignore[union-attr]
    window = re.search(r'<rect x="40" y="8" width="([\d.]+)" height="192"', dom)
    # the first minute of the five: a fifth of the plot's width, not a sixtieth of an hour's
    assert window is not None and float(window.group(1)) == pytest.approx((width - 40) / 5), dom
    assert '<text x="40" y="215" text-anchor="start">03-02 00:00</text>' in dom  # not cut off at the left


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: install Debian's chromium (.ci/run does) to run "
                    "the dashboard page in a headless browser")
def test_the_time_labels_of_a_chart_of_years_name_the_year(index: SqliteIndex,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import uvicorn

    index.upsert([scored(900, minutes=-4 * 365 * 1440)])  # four years before the rest
    monkeypatch.setattr(data, "DEFAULT_DAYS", 5 * 365)  # so the page opens on all of them, week-wide bars or more
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(index, NAMES), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        dom = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
             "--dump-dom", f"http://127.0.0.1:{sock.getsockname()[1]}/"],
            capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    labels = re.findall(r'<text x="[^"]+" y="215" text-anchor="\w+">([^<]+)</text>', dom)
    assert len(labels) == 6 and labels[0].startswith("2022-") and labels[-1].startswith("2026-"), labels


def test_finsentinel_dashboard_on_a_missing_index_is_one_line(tmp_path: Path) -> None:
    proc = _finsentinel(["dashboard", "--index", str(tmp_path / "none.sqlite3")], tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [err.strip()] and err.startswith("finsentinel: error: no sqlite index at")


def test_the_dashboard_help_names_the_login_settings(capsys: pytest.CaptureFixture[str]) -> None:
    from finsentinel.cli import main

    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "alerting.dashboard.username and password" in text and "no login," not in text
