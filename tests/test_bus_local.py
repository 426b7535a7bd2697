"""The local SQLite bus: the shared bus contract plus what only a file-backed bus promises."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finsentinel.bus import make_bus
from finsentinel.bus.base import Bus
from finsentinel.bus.local import LocalBus
from finsentinel.errors import BusError, ConfigError
from finsentinel.settings import BusSettings, LocalBusSettings
from tests.contract.bus import BusContract, NewBus, drain, publish_and_flush_on_another_thread, unique, values

ROOT = Path(__file__).resolve().parents[1]


class TestLocalBusContract(BusContract):
    deadline_s = 10.0

    @pytest.fixture
    def new_bus(self, tmp_path: Path) -> Iterator[NewBus]:
        made: list[LocalBus] = []

        def factory() -> Bus:
            made.append(LocalBus(tmp_path / "bus.sqlite3"))
            return made[-1]

        yield factory
        for bus in made:
            bus.close()


def test_constructor_does_no_io(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bus.sqlite3"
    bus = LocalBus(path)
    assert not path.parent.exists()
    bus.flush()
    bus.close()
    assert not path.parent.exists()


def test_make_bus_builds_the_configured_backend(tmp_path: Path) -> None:
    bus = make_bus(BusSettings(local=LocalBusSettings(path=tmp_path / "b.sqlite3")))
    assert isinstance(bus, LocalBus) and bus.path == tmp_path / "b.sqlite3"
    with pytest.raises(ConfigError, match="expected 'local' or 'kafka'"):
        make_bus(BusSettings.model_construct(backend="redis"))


def test_an_unwritable_path_raises_bus_error_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    bus = LocalBus(blocker / "bus.sqlite3")
    with pytest.raises(BusError, match=r"cannot open the local bus .* bus\.local\.path"):
        bus.ensure_topics(["t"])


_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from finsentinel.bus.local import LocalBus

    path, name, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    bus = LocalBus(path)
    bus.ensure_topics(["shared"])  # opens the database before the start signal
    (go.parent / ("ready-" + name)).touch()
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    for i in range(count):
        bus.publish("shared", b"%s-%05d" % (name.encode(), i), key=name.encode())
        if i % 3 == 2:
            bus.flush()
            time.sleep(0.002)  # yield, so the two publishers' transactions interleave
    bus.close()
    """
)


def test_two_processes_publishing_at_once_lose_nothing_and_get_unique_offsets(tmp_path: Path) -> None:
    path, go, count = tmp_path / "bus.sqlite3", tmp_path / "go", 300
    LocalBus(path).ensure_topics(["shared"])
    procs = [
        subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(path), name, str(count), str(go)],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{n}").exists() for n in "ab") and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    bus = LocalBus(path)
    assert bus.end_offsets(["shared"]) == {"shared": 2 * count}
    consumer = bus.consumer("check", ["shared"])
    got = drain(consumer, 2 * count, 10.0)
    consumer.close()
    bus.close()
    assert sorted(r.offset for r in got) == list(range(2 * count))
    for name in (b"a", b"b"):
        mine = [r.value for r in got if r.key == name]
        assert mine == [b"%s-%05d" % (name, i) for i in range(count)]
    interleaved = [r.key or b"" for r in got]
    assert interleaved != sorted(interleaved), "the publishers never overlapped; the test proved nothing"


def test_a_second_member_takes_over_when_the_first_members_lease_expires(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3", lease_s=0.5)
    topic, group = unique("lease"), unique("g")
    for i in range(3):
        bus.publish(topic, b"m%d" % i)
    bus.flush()
    first = bus.consumer(group, [topic])
    assert values(first.poll(10, 1.0)) == [b"m0", b"m1", b"m2"]
    # The first member hangs (no poll, no close); while its lease lasts the second gets nothing.
    second = bus.consumer(group, [topic])
    assert second.poll(10, 0.1) == []
    time.sleep(0.6)
    assert values(second.poll(10, 2.0)) == [b"m0", b"m1", b"m2"]
    second.commit()
    assert second.committed() == {topic: 3}
    with pytest.raises(BusError, match="another member owns the topic"):
        first.commit()
    assert first.poll(10, 0.1) == []  # it learns it lost the topic
    for consumer in (first, second):
        consumer.close()
    bus.close()


def test_a_member_killed_without_closing_loses_its_lease_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path, lease_s=600.0)
    for i in range(5):
        bus.publish("t", str(i).encode())
    bus.flush()
    holder = textwrap.dedent(
        f"""
        import os
        from finsentinel.bus.local import LocalBus
        consumer = LocalBus({str(path)!r}, lease_s=600.0).consumer("g", ["t"])
        assert len(consumer.poll(2, 5.0)) == 2   # holds the lease, commits nothing
        os._exit(0)                               # dies without leaving the group
        """
    )
    subprocess.run([sys.executable, "-c", holder], check=True, timeout=60)
    successor = bus.consumer("g", ["t"])
    started = time.monotonic()
    assert [r.value for r in successor.poll(10, 2.0)] == [str(i).encode() for i in range(5)]
    assert time.monotonic() - started < 1.5  # not the 600 s lease
    successor.close()
    bus.close()


def test_a_live_member_keeps_its_lease(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3", lease_s=600.0)
    bus.publish("t", b"x")
    bus.flush()
    first, second = bus.consumer("g", ["t"]), bus.consumer("g", ["t"])
    assert len(first.poll(10, 1.0)) == 1
    assert second.poll(10, 0.2) == []  # same live process: waits for the lease
    first.close()
    second.close()
    bus.close()


def test_an_idle_poll_renews_its_lease_about_once_a_second_not_on_every_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3", lease_s=10.0)
    bus.ensure_topics(["t"])
    consumer = bus.consumer("g", ["t"])
    claims: list[float] = []
    claim = consumer._claim

    def counted() -> None:
        claims.append(time.monotonic())
        claim()

    monkeypatch.setattr(consumer, "_claim", counted)
    assert consumer.poll(10, 1.5) == []  # an idle poll looks for records every 50 ms
    assert 1 <= len(claims) <= 2  # a synced write transaction each: not 30 of them
    consumer.close()
    bus.close()


def test_a_flush_failing_on_another_thread_does_not_lose_this_threads_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The alert worker and its alerts-topic sink (a notifier thread) share one bus. If the sink's
    # flush takes the worker's pending dead letters with it and fails, the worker's own flush must
    # not return as if they were durable: the worker would commit and the records would be gone.
    bus = LocalBus(tmp_path / "bus.sqlite3")
    bus.ensure_topics(["news.scored.dlq", "alerts"])
    bus.publish("news.scored.dlq", b"dead letter")  # the worker thread, before its flush

    def failing_append(rows: object) -> None:
        raise BusError("local bus write failed: disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(bus, "_append", failing_append)
        errors = publish_and_flush_on_another_thread(bus, "alerts", b"alert")
    assert len(errors) == 1
    try:
        bus.flush()
    except BusError:
        pass  # reporting the loss is fine: the worker then redoes its batch
    else:
        assert bus.end_offsets(["news.scored.dlq"]) == {"news.scored.dlq": 1}, "flush returned, record lost"
    bus.close()


def test_close_closes_the_connection_even_when_its_last_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3")
    bus.ensure_topics(["news.raw"])
    bus.publish("news.raw", b"never flushed")
    conn = bus._conn
    assert conn is not None

    def failing_append(rows: object) -> None:
        raise BusError("local bus write failed: disk I/O error")

    monkeypatch.setattr(bus, "_append", failing_append)
    with pytest.raises(BusError, match="disk I/O error"):
        bus.close()
    assert bus._conn is None
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not leaked
        conn.execute("SELECT 1")
