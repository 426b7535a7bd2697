"""The delivery ledger: a restarted notifier re-sends, per sink, what that sink had not delivered."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from alerting.index.sqlite import SqliteIndex
from alerting.notify import DeliveryLedger, Notifier
from alerting.notify.webhook import WebhookSink
from finsentinel.bus.local import LocalBus
from finsentinel.errors import ConfigError
from finsentinel.runtime import _Detector
from finsentinel.schema import Alert
from finsentinel.settings import Settings, WebhookSinkSettings
from tests.contract.index import make_alert

ALERT = make_alert()


class Sink:
    """Records what it delivers; fails while ``down`` is set."""

    def __init__(self, name: str, transitions_only: bool = True) -> None:
        self.name, self.transitions_only = name, transitions_only
        self.sent: list[Alert] = []
        self.down = threading.Event()

    def send(self, alert: Alert) -> None:
        if self.down.is_set():
            raise ConnectionError("endpoint down")
        self.sent.append(alert)

    def close(self) -> None:
        pass


def _run(sinks: list[Sink], ledger: DeliveryLedger, batches: list[list[Alert]], known: list[Alert]) -> None:
    notifier = Notifier(sinks, retries=0, backoff_s=0.01, known=known, ledger=ledger)
    for batch in batches:
        notifier.notify(batch)
    assert notifier.flush(5)
    notifier.close()


def test_an_alert_a_sink_did_not_deliver_is_sent_again_after_a_restart_and_only_to_that_sink(tmp_path: Path) -> None:
    ledger = DeliveryLedger(tmp_path / "var" / "deliveries.sqlite3")
    hook, topic = Sink("hook"), Sink("topic", transitions_only=False)
    hook.down.set()
    _run([hook, topic], ledger, [[ALERT]], known=[])
    assert hook.sent == [] and topic.sent == [ALERT]
    # Restart: the index holds the alert (detection stored it), so it is `known`; the ledger, made
    # by the first run, is not seeded again, and says which sink still owes it.
    hook.down.clear()
    _run([hook, topic], ledger, [[ALERT]], known=[ALERT])
    assert hook.sent == [ALERT] and topic.sent == [ALERT]
    _run([hook, topic], ledger, [[ALERT]], known=[ALERT])  # delivered now: not again
    assert hook.sent == [ALERT] and topic.sent == [ALERT]


def test_a_new_ledger_is_seeded_with_the_stored_alerts_so_it_sends_no_storm(tmp_path: Path) -> None:
    hook = Sink("hook")
    _run([hook], DeliveryLedger(tmp_path / "deliveries.sqlite3"), [[ALERT]], known=[ALERT])
    assert hook.sent == []
    without = Sink("hook")  # and with no ledger, `known` is what was delivered, as before
    notifier = Notifier([without], known=[ALERT])
    assert notifier.notify([ALERT]) == 0
    assert notifier.flush(5)
    notifier.close()
    assert without.sent == []


def test_a_ledger_cut_off_while_it_was_made_is_seeded_again_not_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    sqlite3.connect(path).close()  # the file a process killed before its seed transaction committed leaves
    assert path.exists() and not DeliveryLedger(path).exists()
    hook = Sink("hook")
    _run([hook], DeliveryLedger(path), [[ALERT]], known=[ALERT])
    assert hook.sent == []  # not a storm of every stored alert
    empty = tmp_path / "empty.sqlite3"
    DeliveryLedger(empty).record(["hook"], [])  # made and seeded with nothing: it exists
    assert DeliveryLedger(empty).exists()


def test_a_sink_added_later_starts_from_the_stored_alerts_then_hears_what_is_new(tmp_path: Path) -> None:
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite3")
    hook = Sink("hook")
    _run([hook], ledger, [[ALERT]], known=[])
    assert hook.sent == [ALERT]
    slack, hook = Sink("slack"), Sink("hook")  # a restart with a webhook added to the settings
    _run([hook, slack], ledger, [[ALERT]], known=[ALERT])
    assert slack.sent == [] and hook.sent == []  # no storm of every stored alert into the new channel
    new = make_alert("topic", "regulation", ALERT.start + timedelta(hours=5))
    _run([Sink("hook"), slack], ledger, [[ALERT, new]], known=[ALERT])
    assert slack.sent == [new]


def test_a_ledger_from_before_the_sinks_table_knows_its_sinks_by_their_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    with sqlite3.connect(path) as db:  # as the previous version wrote it: deliveries only
        db.execute("CREATE TABLE deliveries (sink TEXT NOT NULL, alert_id TEXT NOT NULL, alert TEXT NOT NULL, "
                   "PRIMARY KEY (sink, alert_id))")
        db.execute("INSERT INTO deliveries VALUES ('hook', ?, ?)", (ALERT.id, ALERT.to_json().decode()))
    db.close()
    ledger = DeliveryLedger(path)
    assert ledger.exists() and ledger.sinks() == {"hook"}
    hook, slack = Sink("hook"), Sink("slack")
    new = make_alert("topic", "regulation", ALERT.start + timedelta(hours=5))
    _run([hook, slack], ledger, [[ALERT, new]], known=[ALERT])
    assert hook.sent == [new] and slack.sent == [new]
    assert ledger.sinks() == {"hook", "slack"}


def test_humans_hear_of_transitions_across_a_restart(tmp_path: Path) -> None:
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite3")
    human = Sink("human")
    more = ALERT.model_copy(update={"observed": 14})
    worse = more.model_copy(update={"severity": "critical", "status": "escalated"})
    _run([human], ledger, [[ALERT]], known=[])
    _run([human], ledger, [[more]], known=[ALERT])  # a count changed: no news for a person
    _run([human], ledger, [[worse]], known=[more])
    assert [(a.observed, a.status) for a in human.sent] == [(12, "open"), (14, "escalated")]


def test_two_webhooks_on_one_host_keep_their_own_record(tmp_path: Path) -> None:
    one = WebhookSink(WebhookSinkSettings(url="https://hooks.example.com/services/T1/secret-one"))
    two = WebhookSink(WebhookSinkSettings(url="https://hooks.example.com/services/T2/secret-two"))
    assert one.name == two.name and one.ledger_key != two.ledger_key
    assert "secret" not in one.ledger_key
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite3")
    ledger.record([one.ledger_key], [ALERT])
    assert ledger.delivered(one.ledger_key) == {ALERT.id: ALERT} and ledger.delivered(two.ledger_key) == {}
    ledger.close()


def test_a_row_that_no_longer_parses_counts_as_not_delivered(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    ledger = DeliveryLedger(path)
    ledger.record(["hook"], [ALERT])
    ledger.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE deliveries SET alert = '{\"id\": 1}'")
    db.close()
    assert ledger.delivered("hook") == {}
    ledger.close()


def test_an_unusable_ledger_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory", encoding="utf-8")
    with pytest.raises(ConfigError, match="alerting.notify.ledger_path"):
        DeliveryLedger(tmp_path / "file" / "deliveries.sqlite3").delivered("hook")


def test_the_alert_worker_resends_on_start_what_the_ledger_lacks(tmp_path: Path) -> None:
    settings = Settings.model_validate({"alerting": {"notify": {
        "log": False, "ledger_path": str(tmp_path / "deliveries.sqlite3")}}})
    DeliveryLedger(tmp_path / "deliveries.sqlite3").record(["topic:alerts"], [])  # it delivered nothing
    bus = LocalBus(tmp_path / "bus.sqlite3")
    bus.ensure_topics(["alerts"])
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.ensure()
    index.upsert_alerts([ALERT])  # stored by detection before the worker stopped
    detector = _Detector(settings, bus, index, every_s=30.0)
    assert detector.notifier.flush(5)
    detector.notifier.close()
    assert bus.end_offsets(["alerts"]) == {"alerts": 1} and detector.published == 0
    index.close()
    bus.close()
