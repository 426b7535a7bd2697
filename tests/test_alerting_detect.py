"""Detector scenarios on synthetic, seeded traffic: pure functions, no I/O."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alerting.detect import (
    Detection,
    ItemDetector,
    bucket_index,
    bucket_start,
    detect,
    detect_counts,
    detect_items,
    detect_series,
)
from alerting.index.base import BucketCount, Scope
from finsentinel.errors import ConfigError, SchemaError
from finsentinel.schema import Alert, ScoredItem, Sentiment, alert_id
from finsentinel.settings import DetectSettings, SeriesSettings

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
COMPANIES = ("aurora-motors", "pacific-grid", "jinhai-securities", "lumen-pharma",
             "zhongtian-semi", "northwind-bank", "meridian-foods", "harbor-logistics")
TOPICS = ("earnings", "regulation", "product", "markets")

SETTINGS = DetectSettings(
    bucket_minutes=60, window_buckets=3, min_negative=5, min_ratio=3.0, p_value=1e-4, warmup_buckets=12,
    halflife_buckets=24, cooldown_buckets=2, prior_weight=30,
)

_SCORE = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}


def make_item(n: int, when: datetime, sentiment: Sentiment, entities: Sequence[str] = (), topic: str = "markets",
              score: float | None = None, source: str = "wire", copies: int = 1) -> ScoredItem:
    return ScoredItem(
        id=f"item-{n:08d}", source=source, url=f"https://news.example/{n}", title=f"headline {n}", lang="en",
        published_at=when, fetched_at=when + timedelta(minutes=1), copies=copies, topic=topic,
        topic_scores={topic: 1.0}, sentiment=sentiment, sentiment_scores={sentiment: 1.0},
        sentiment_score=_SCORE[sentiment] if score is None else score, entities=tuple(entities),
        model_version="test",
    )


def traffic(seed: int, hours: int = 48, companies: Sequence[str] = COMPANIES, negative: float = 0.15,
            first_id: int = 0) -> list[ScoredItem]:
    """Steady news: each company 0-2 items an hour, ``negative`` of them negative, plus market items."""
    rng = random.Random(seed)
    items: list[ScoredItem] = []
    for hour in range(hours):
        for company in list(companies) + ["<market>"]:
            for _ in range(rng.choice((0, 1, 1, 2))):
                when = T0 + hour * HOUR + timedelta(seconds=rng.randrange(3600))
                sentiment: Sentiment = "negative" if rng.random() < negative else rng.choice(("neutral", "positive"))
                entities = () if company == "<market>" else (company,)
                items.append(make_item(first_id + len(items), when, sentiment, entities, rng.choice(TOPICS)))
    return items


def burst(company: str, start: datetime, per_hour: Sequence[int], first_id: int, topic: str = "regulation",
          copies: int = 1) -> list[ScoredItem]:
    """``per_hour[i]`` negative items about ``company`` in hour ``i`` after ``start``."""
    items: list[ScoredItem] = []
    for hour, count in enumerate(per_hour):
        for k in range(count):
            when = start + hour * HOUR + timedelta(minutes=5 + 50 * k // max(count, 1))
            items.append(make_item(first_id + len(items), when, "negative", (company,), topic,
                                   score=-0.5 - 0.49 * (len(items) * 37 % 100) / 100, source=f"src{len(items) % 3}", copies=copies))
    return items


def summary(alerts: Sequence[Alert]) -> list[tuple[str, str | None, datetime, datetime, int, int]]:
    return [(a.scope, a.entity or a.topic, a.start, a.end, a.observed, a.total) for a in alerts]


BURST_START = T0 + 30 * HOUR


def burst_scenario(seed: int) -> list[ScoredItem]:
    return traffic(seed) + burst("aurora-motors", BURST_START, (5, 5, 4, 4), first_id=100_000)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_steady_traffic_raises_no_alert(seed: int) -> None:
    items = traffic(seed)
    assert len(items) > 350
    assert detect(items, SETTINGS) == []


@pytest.mark.parametrize(("seed", "raised_first"), [(1, []), (2, [("topic", "regulation")]), (3, [])])
def test_company_burst_gives_one_company_alert_and_no_topic_or_overall_alert(
    seed: int, raised_first: list[tuple[str, str]],
) -> None:
    alerts = detect(burst_scenario(seed), SETTINGS)
    assert [(a.scope, a.entity) for a in alerts if a.scope == "entity"] == [("entity", "aurora-motors")]
    alert = next(a for a in alerts if a.scope == "entity")
    # The topic and overall spikes are the company's, explained by its alert; with seed 2 the
    # topic alerted an hour before the company did, so a live run raised it and it stays.
    others = [a for a in alerts if a.scope != "entity"]
    assert [(a.scope, a.topic) for a in others] == raised_first
    assert all(a.created_at < alert.created_at for a in others)
    assert abs(alert.start - BURST_START) <= HOUR
    assert alert.end > BURST_START + 2 * HOUR
    assert alert.observed >= 18 and alert.total >= alert.observed
    assert alert.id == alert_id("entity", "aurora-motors", alert.start)
    assert alert.p_value < SETTINGS.p_value and alert.share > alert.baseline_share
    assert alert.expected < alert.observed / SETTINGS.min_ratio
    assert alert.topic == "regulation"  # the burst's topic dominates the company's negatives


def test_topic_and_overall_alerts_exist_and_are_suppressed_as_explained(caplog: pytest.LogCaptureFixture) -> None:
    items = traffic(1) + burst("aurora-motors", BURST_START, (8, 8, 6, 6), first_id=100_000)
    without_companies = detect(items, SETTINGS.model_copy(update={"scopes": ["topic", "overall"]}))
    assert {a.scope for a in without_companies} == {"topic", "overall"}
    assert all(abs(a.start - BURST_START) <= HOUR for a in without_companies)
    with caplog.at_level(logging.DEBUG, logger="alerting.detect"):
        alerts = detect(items, SETTINGS)
    assert {a.scope for a in alerts} == {"entity"}
    assert "explained by the alert on aurora-motors" in caplog.text


def test_unrelated_topic_alert_is_not_suppressed() -> None:
    # Negatives from many companies at once: no single company explains the overall spike.
    items = traffic(1)
    items += [make_item(200_000 + i, BURST_START + timedelta(minutes=3 * i), "negative",
                        (COMPANIES[i % 8],), "markets") for i in range(40)]
    alerts = detect(items, SETTINGS)
    assert "overall" in {a.scope for a in alerts}


def test_cold_start_company_without_history_still_alerts() -> None:
    items = traffic(1, companies=COMPANIES[1:])  # aurora-motors never appears before the burst
    items += burst("aurora-motors", BURST_START, (5, 5), first_id=100_000)
    alerts = [a for a in detect(items, SETTINGS) if a.scope == "entity"]
    assert [a.entity for a in alerts] == ["aurora-motors"]
    assert abs(alerts[0].start - BURST_START) <= HOUR
    assert 0.05 < alerts[0].baseline_share < 0.3  # borrowed from the overall share


def test_no_alert_during_warm_up() -> None:
    items = traffic(1, hours=20) + burst("aurora-motors", T0 + 5 * HOUR, (6, 6), first_id=100_000)
    assert detect(items, SETTINGS) == []
    warm = detect(items, SETTINGS.model_copy(update={"warmup_buckets": 2}))
    assert [a.entity for a in warm if a.scope == "entity"] == ["aurora-motors"]


def test_shuffled_input_gives_the_same_alerts() -> None:
    items = burst_scenario(2)
    expected = detect(items, SETTINGS)
    shuffled = list(items)
    random.Random(7).shuffle(shuffled)
    assert expected and detect(shuffled, SETTINGS) == expected


def test_copies_and_redelivered_items_count_once() -> None:
    base = traffic(1)
    once = detect(base + burst("aurora-motors", BURST_START, (5, 5, 4, 4), 100_000), SETTINGS)
    syndicated = burst("aurora-motors", BURST_START, (5, 5, 4, 4), 100_000, copies=40)
    assert summary(detect(base + syndicated + syndicated, SETTINGS)) == summary(once)
    # Three reports syndicated forty times each are still three reports: below min_negative.
    few = burst("aurora-motors", BURST_START, (3,), 100_000, copies=40)
    assert detect(base + few, SETTINGS) == []


def test_min_negative_is_respected() -> None:
    settings = SETTINGS.model_copy(update={"window_buckets": 1, "scopes": ["entity"]})
    items = traffic(1) + burst("aurora-motors", BURST_START, (7,), first_id=100_000)
    observed = sum(1 for i in items if _negative_in_hour(i, "aurora-motors", BURST_START))
    assert observed >= 7
    alerts = detect(items, settings.model_copy(update={"min_negative": observed}))
    assert [(a.scope, a.entity, a.observed) for a in alerts] == [("entity", "aurora-motors", observed)]
    assert detect(items, settings.model_copy(update={"min_negative": observed + 1})) == []


def _negative_in_hour(item: ScoredItem, company: str, start: datetime) -> bool:
    return company in item.entities and item.sentiment == "negative" and start <= item.published_at < start + HOUR


def test_buckets_within_cooldown_merge_into_one_episode_and_escalate() -> None:
    settings = SETTINGS.model_copy(update={"window_buckets": 1, "high_p_value": 1e-8, "high_ratio": 5.0,
                                           "critical_p_value": 1e-30, "critical_ratio": 50.0})
    # A first bucket that alerts as a warning, a quiet hour, then heavier bad news.
    items = traffic(1) + burst("aurora-motors", BURST_START, (7, 0, 8, 8), first_id=100_000)
    alerts = [a for a in detect(items, settings) if a.scope == "entity"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.start == BURST_START and alert.end == BURST_START + 4 * HOUR
    assert alert.observed >= 22
    assert alert.severity == "high" and alert.status == "resolved"  # the data run on past the cooldown
    assert alert.p_value < settings.high_p_value
    # As a live run saw it: opened as a warning, escalated while the episode ran, one id throughout.
    def live(hours: float) -> Alert:
        seen = [i for i in items if i.published_at < BURST_START + timedelta(hours=hours)]
        (found,) = [a for a in detect(seen, settings) if a.scope == "entity"]
        return found

    first, running = live(3.5), live(6.5)
    assert (first.severity, first.status, first.end) == ("warning", "open", BURST_START + HOUR)
    assert (running.severity, running.status, running.end) == ("high", "escalated", alert.end)
    assert first.id == running.id == alert.id


def test_gap_longer_than_cooldown_starts_a_new_alert() -> None:
    settings = SETTINGS.model_copy(update={"window_buckets": 1})
    items = traffic(1) + burst("aurora-motors", BURST_START, (7, 0, 0, 0, 7), first_id=100_000)
    alerts = [a for a in detect(items, settings) if a.scope == "entity"]
    assert [a.start for a in alerts] == [BURST_START, BURST_START + 4 * HOUR]
    assert [a.status for a in alerts] == ["resolved", "resolved"]
    assert len({a.id for a in alerts}) == 2


def test_headlines_are_the_most_negative_first_and_sources_listed() -> None:
    alerts = detect(burst_scenario(1), SETTINGS)
    headlines = alerts[0].headlines
    assert len(headlines) == SETTINGS.max_headlines
    scores = [h.sentiment_score for h in headlines]
    assert scores == sorted(scores) and scores[0] <= -0.6
    assert set(alerts[0].sources) >= {"src0", "src1", "src2"}


def test_rerun_with_more_data_keeps_the_episode_id() -> None:
    items = burst_scenario(1)
    early = detect([i for i in items if i.published_at < BURST_START + 5 * HOUR], SETTINGS)  # lateness: 2 h
    late = detect(items, SETTINGS)
    assert [a.id for a in early] == [a.id for a in late]
    assert late[0].end > early[0].end


@pytest.mark.parametrize("history", [(), (4.0, 0.0, 9.0), (30.0,) * 40])
def test_a_key_skipped_while_it_has_no_items_learns_those_buckets_as_if_stepped(history: tuple[float, ...]) -> None:
    """Baseline.idle, the catch-up of a key not stepped in buckets without its items, is
    update_count(0.0) and update_share(0, 0, share) bucket by bucket, to the bit, and gives the
    steps from ``keep`` on. Histories: none (the first bucket has no weight yet), a quiet one, and
    a level far above the clip bound (the empty bucket is learned as level minus the bound)."""
    from alerting.detect.baseline import Baseline
    from alerting.detect.lifecycle import Step

    rng = random.Random(5)
    overall = {b: Step(0.0, 0.0, 0.0, rng.uniform(0.05, 0.5), rng.uniform(0.1, 10.0)) for b in range(300)}
    stepped, skipped = Baseline(SETTINGS), Baseline(SETTINGS)
    for base in (stepped, skipped):
        for value in history:
            base.update_count(value)
            base.update_share(value, 2 * value, 0.3)
    steps: dict[int, Step] = {}
    for bucket in range(10, 300):
        share = stepped.share(overall[bucket].baseline)
        steps[bucket] = Step(0.0, 0.0, stepped.level, share, overall[bucket].factor)
        stepped.update_count(0.0)
        stepped.update_share(0.0, 0.0, share)
    kept: dict[int, Step] = {}
    skipped.idle(10, 299, 290, overall, kept)
    assert skipped.__dict__ == stepped.__dict__
    assert kept == {b: step for b, step in steps.items() if b >= 290}


def test_detect_counts_matches_detect_on_items() -> None:
    items = burst_scenario(1)
    counts: dict[Scope, list[BucketCount]] = {"entity": [], "topic": [], "overall": []}
    cells: dict[tuple[Scope, str | None, int], list[int]] = {}
    for item in items:
        b = bucket_index(item.published_at, 60)
        keys: list[tuple[Scope, str | None]] = [("overall", None), ("topic", item.topic)]
        keys += [("entity", e) for e in item.entities]
        for scope, key in keys:
            cell = cells.setdefault((scope, key, b), [0, 0])
            cell[0] += 1
            cell[1] += item.sentiment == "negative"
    for (scope, key, b), (total, negative) in sorted(cells.items(), key=str):
        counts[scope].append(BucketCount(bucket_start(b, 60), key, total, negative))
    from_items = [a for a in detect(items, SETTINGS)]
    from_counts = detect_counts(counts, SETTINGS)
    entity = [a for a in from_counts if a.scope == "entity"]
    assert summary(entity) == summary(from_items)
    assert entity[0].headlines == () and entity[0].sources == ()
    assert "overall" not in {a.scope for a in from_counts}  # explained by the company's negatives


def test_detect_counts_rejects_misaligned_buckets() -> None:
    row = BucketCount(T0 + timedelta(minutes=7), None, 3, 1)
    with pytest.raises(ConfigError, match="60-minute boundary"):
        detect_counts({"overall": [row]}, SETTINGS)


def test_empty_input() -> None:
    assert detect([], SETTINGS) == []
    assert detect_counts({}, SETTINGS) == []
    assert detect_series([], [], SeriesSettings()) == []


SERIES = SeriesSettings(warmup_buckets=24, cooldown_buckets=6)


def test_detect_series_flags_a_spike_and_not_noise() -> None:
    rng = random.Random(3)
    times = [T0 + i * HOUR for i in range(200)]
    values = [float(max(0, round(rng.gauss(20, 4.5)))) for _ in times]
    assert detect_series(times, values, SERIES) == []
    spiked = list(values)
    spiked[150:153] = [150.0, 180.0, 160.0]
    found = detect_series(list(reversed(times)), list(reversed(spiked)), SERIES)  # order does not matter
    assert found == [times[150]]


def test_detect_series_rejects_mismatched_lengths_and_negative_counts() -> None:
    with pytest.raises(SchemaError, match="as many values as timestamps"):
        detect_series([T0], [1.0, 2.0], SERIES)
    with pytest.raises(SchemaError, match="counts >= 0"):
        detect_series([T0], [-1.0], SERIES)


def test_a_stray_negative_before_a_burst_does_not_start_the_alert() -> None:
    items = [i for i in traffic(1) if not ("aurora-motors" in i.entities and
                                           BURST_START - 3 * HOUR <= i.published_at < BURST_START)]
    items.append(make_item(300_000, BURST_START - 2 * HOUR + timedelta(minutes=30), "negative", ("aurora-motors",)))
    items += burst("aurora-motors", BURST_START, (9,), first_id=100_000)
    alerts = [a for a in detect(items, SETTINGS) if a.scope == "entity"]
    assert [(a.entity, a.start, a.observed) for a in alerts] == [("aurora-motors", BURST_START, 9)]


def arrive(items: Sequence[ScoredItem], delay: timedelta) -> list[ScoredItem]:
    """The items fetched ``delay`` after they were published."""
    return [i.model_copy(update={"fetched_at": i.published_at + delay}) for i in items]


@pytest.mark.parametrize(("seed", "scenario", "delays", "poll_minutes"), [
    (11, 3, (1, 2, 5, 90), 20),
    (6, 2, (1, 2, 5, 30, 90), 10),  # a topic alert a live run raised before the company's own alert
    (9, 5, (1, 2, 5, 150, 170, 190), 10),  # items later than the allowed lateness split an arrival
])
def test_live_runs_after_every_poll_agree_with_one_backfill(
    seed: int, scenario: int, delays: tuple[int, ...], poll_minutes: int,
) -> None:
    rng = random.Random(seed)
    items = burst_scenario(scenario)
    fetched = [i.model_copy(update={"fetched_at": i.published_at + timedelta(minutes=rng.choice(delays))})
               for i in items]
    backfill = detect(fetched, SETTINGS)
    assert "aurora-motors" in [a.entity for a in backfill]
    seen: dict[str, Alert] = {}
    live = ItemDetector(SETTINGS)  # kept from poll to poll, fed only what arrived since it last judged
    poll, last = min(i.fetched_at for i in fetched), max(i.fetched_at for i in fetched)
    while poll <= last + SETTINGS.lateness_buckets * HOUR:
        arrived = [i for i in fetched if i.fetched_at <= poll]
        rerun = detect_items(arrived, SETTINGS, now=poll)
        since = live.watermark.horizon
        live.feed([i for i in arrived if since is None or i.fetched_at > since], now=poll)
        assert live.detection() == rerun  # resuming gives what a run over everything gives
        for alert in rerun.alerts:
            seen[alert.id] = alert
        poll += timedelta(minutes=poll_minutes)
    assert seen == {a.id: a for a in backfill}  # no alert a live run raised was retracted or differs


def test_items_arriving_after_their_bucket_closed_are_late_and_not_counted() -> None:
    quiet = traffic(1)
    # The burst is reported only four hours after it happened, after later news was already in.
    delayed = arrive(burst("aurora-motors", BURST_START, (5, 5, 4, 4), first_id=100_000), timedelta(hours=8))
    result = detect_items(quiet + delayed, SETTINGS)
    assert result.alerts == [] and result.late == len(delayed)
    on_time = detect_items(quiet + arrive(delayed, timedelta(minutes=1)), SETTINGS)
    assert on_time.late == 0 and [a.entity for a in on_time.alerts] == ["aurora-motors"]


def test_buckets_the_watermark_has_not_closed_are_not_judged_yet() -> None:
    items = burst_scenario(1)
    cut = BURST_START + 2 * HOUR
    partial = detect_items([i for i in items if i.published_at < cut], SETTINGS)
    assert partial.alerts == [] and partial.open_items > 0  # the burst's buckets are still open
    assert detect_items([], SETTINGS) == Detection([], 0, 0)


def test_syndicated_copies_count_when_settings_say_so() -> None:
    few = traffic(1) + burst("aurora-motors", BURST_START, (3,), 100_000, copies=40)
    assert detect(few, SETTINGS) == []
    counted = detect(few, SETTINGS.model_copy(update={"count_copies": True}))
    assert [(a.entity, a.observed) for a in counted if a.scope == "entity"] == [("aurora-motors", 120)]


def daily_traffic(days: int, seed: int) -> list[ScoredItem]:
    """A company whose news comes in office hours (8-18 UTC: ~4 items an hour), rarely at night."""
    rng = random.Random(seed)
    items: list[ScoredItem] = []
    for hour in range(days * 24):
        busy = 8 <= hour % 24 < 18
        for _ in range(rng.choice((3, 4, 5) if busy else (0, 0, 0, 1))):
            when = T0 + hour * HOUR + timedelta(seconds=rng.randrange(3600))
            sentiment: Sentiment = "negative" if rng.random() < 0.15 else "neutral"
            items.append(make_item(len(items), when, sentiment, ("aurora-motors",)))
    return items


def test_hourly_seasonality_is_learned_once_enough_history_exists() -> None:
    from alerting.detect.lifecycle import Cell
    from alerting.detect.sentiment import seasonal_factors

    cells: dict[int, Cell] = {}
    for item in daily_traffic(21, seed=5):
        cells.setdefault(bucket_index(item.published_at, 60), Cell()).total += 1
    first, last = min(cells), max(cells)
    factors = seasonal_factors(cells, first, last, SETTINGS)
    hour = {b: bucket_start(b, 60).hour for b in range(first, last + 1)}
    assert all(f == 1.0 for b, f in zip(range(first, first + 72), factors, strict=False))  # < 3 days: flat
    late = [(hour[b], f) for b, f in zip(range(first, last + 1), factors, strict=True) if b >= first + 15 * 24]
    busy = [f for h, f in late if 9 <= h < 17]
    night = [f for h, f in late if h < 6]
    assert sum(busy) / len(busy) > 1.5 and sum(night) / len(night) < 0.6
    flat = seasonal_factors(cells, first, last, SETTINGS.model_copy(update={"seasonality": False}))
    assert set(flat) == {1.0}


def test_a_night_burst_is_judged_against_what_the_night_expects() -> None:
    items = daily_traffic(21, seed=5)
    night = T0 + timedelta(days=18, hours=2)
    items += burst("aurora-motors", night, (4, 3), first_id=500_000)
    seasonal = [a for a in detect(items, SETTINGS) if a.start >= night - HOUR]
    flat = [a for a in detect(items, SETTINGS.model_copy(update={"seasonality": False})) if a.start >= night - HOUR]
    assert [a.entity for a in seasonal if a.scope == "entity"] == ["aurora-motors"]
    assert abs(seasonal[0].start - night) <= HOUR
    company = [a for a in flat if a.scope == "entity"]
    assert not company or company[0].expected > seasonal[0].expected


def test_one_fetch_of_many_feeds_is_one_arrival_not_late_items() -> None:
    """A backfill reads feed after feed within seconds: no item is late because of feed order."""
    from alerting.detect.watermark import split_late

    fetched = T0 + 72 * HOUR
    feed_a = [make_item(i, T0 + i * HOUR, "neutral") for i in range(48)]
    feed_b = [make_item(100 + i, T0 + i * HOUR + timedelta(minutes=30), "negative") for i in range(48)]
    items = [i.model_copy(update={"fetched_at": fetched + timedelta(milliseconds=n)})
             for n, i in enumerate(feed_a + feed_b)]
    marked = split_late(items, 60, timedelta(hours=2))
    assert marked.late == [] and len(marked.on_time) == 96
    # feed B fetched a day after feed A is late where feed A's newest item (hour 47) had already
    # closed its bucket: hours 0-44 (bucket end + 2 h lateness <= hour 47), not 45-47
    later = [i.model_copy(update={"fetched_at": fetched + timedelta(days=1)}) for i in feed_b]
    assert len(split_late(items[:48] + later, 60, timedelta(hours=2)).late) == 45


def test_a_live_run_leaves_an_arrival_that_may_still_grow_pending() -> None:
    """An arrival is judged once its lateness has passed: before that more of it may come."""
    from alerting.detect.watermark import split_late

    lateness = timedelta(hours=2)
    before = [make_item(0, T0, "neutral")]  # fetched T0 + 1 min
    fetch = T0 + 6 * HOUR
    fresh = make_item(1, fetch, "neutral").model_copy(update={"fetched_at": fetch})
    slow = make_item(2, T0 + 2 * HOUR, "negative").model_copy(update={"fetched_at": fetch + HOUR})
    done = split_late(before + [fresh, slow], 60, lateness)
    assert done.on_time == before + [fresh, slow] and done.pending == []
    # a run at fetch + 30 min has seen only the fresh item; were it judged, it would close the slow
    # item's bucket (hour 2) without it, though that item is on time once its arrival is complete
    live = split_late(before + [fresh], 60, lateness, now=fetch + timedelta(minutes=30))
    assert live.on_time == before and live.pending == [fresh] and live.watermark == T0 - lateness
    assert split_late(before + [fresh], 60, lateness, now=fetch + lateness + timedelta(seconds=1)).pending == []


def test_an_item_published_after_it_was_fetched_counts_when_it_was_fetched() -> None:
    """Clock skew (a feed writing local time as UTC): the item's event time, which the watermark
    judges, is its fetch time; it is counted in that bucket, not hours ahead."""
    reported = burst("aurora-motors", BURST_START, (5, 5, 4, 4), first_id=100_000)
    skewed = [i.model_copy(update={"published_at": i.published_at + 3 * HOUR}) for i in reported]
    expected = detect(traffic(1) + reported, SETTINGS)
    assert [a.entity for a in expected] == ["aurora-motors"]
    assert summary(detect(traffic(1) + skewed, SETTINGS)) == summary(expected)


def test_with_count_copies_a_topic_alert_made_of_one_companys_copies_is_explained_by_it() -> None:
    """The share of a topic's negatives about one company is weighed as the alert's counts are."""
    settings = SETTINGS.model_copy(update={"count_copies": True})
    items = traffic(1) + burst("aurora-motors", BURST_START, (3,), 100_000, copies=40)  # 120 reports
    items += [make_item(300_000 + k, BURST_START + timedelta(minutes=10 * k), "negative", (), "regulation")
              for k in range(5)]  # and five unrelated ones
    alerts = detect(items, settings)
    assert [(a.scope, a.entity, a.observed) for a in alerts] == [("entity", "aurora-motors", 120)]


def test_detect_series_rejects_an_infinite_count() -> None:
    """An infinite first count made the level infinite: every later bucket silently judged normal."""
    with pytest.raises(SchemaError, match="counts >= 0"):
        detect_series([T0, T0 + HOUR], [float("inf"), 1.0], SERIES)


def test_a_long_backfill_is_pruned_as_it_goes_and_finds_the_same_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerting.detect import engine

    items = daily_traffic(21, seed=5)
    items += burst("aurora-motors", T0 + timedelta(days=10, hours=11), (9, 8, 3), first_id=600_000)
    items += burst("aurora-motors", T0 + timedelta(days=18, hours=2), (4, 3), first_id=500_000)
    expected = detect(items, SETTINGS)
    assert len(expected) >= 2
    monkeypatch.setattr(engine, "_PRUNE_EVERY", 5)
    pruned: list[int] = []
    prune = engine.Engine._prune
    monkeypatch.setattr(engine.Engine, "_prune", lambda self, last: (pruned.append(last), prune(self, last))[1])
    detector = ItemDetector(SETTINGS)
    detector.feed(items)
    assert detector.detection().alerts == expected and len(pruned) > 90  # every 5 of 21 x 24 buckets
    assert max(len(scan.steps) for scan in detector.engine.keys.values()) <= 2 * SETTINGS.window_buckets
