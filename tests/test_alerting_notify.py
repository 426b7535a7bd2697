"""Alert sinks and the fan-out notifier, against local servers on 127.0.0.1 only."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from alerting.index.sqlite import SqliteIndex
from alerting.notify import Notifier, build_notifier, build_sinks
from alerting.notify.base import body_text, subject
from alerting.notify.index import IndexSink
from alerting.notify.log import LogSink
from alerting.notify.smtp import EmailError, EmailSink
from alerting.notify.topic import TopicSink
from alerting.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookError, WebhookSink, sign
from finsentinel.bus.local import LocalBus
from finsentinel.schema import Alert
from finsentinel.settings import EmailSinkSettings, NotifySettings, WebhookSinkSettings
from tests.contract.index import make_alert

ALERT = make_alert()


class Hook:
    """A local webhook receiver: answers with the next status of ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook([])
    yield server
    server.stop()


def test_messages_carry_the_numbers_headlines_and_sources() -> None:
    assert subject(ALERT) == "[HIGH] negative news spike: aurora-motors since 2026-03-02 09:00 UTC"
    text = body_text(ALERT)
    assert "12 negative of 15 items vs 1.5 expected" in text and "80% vs 15% usual" in text
    assert "极光汽车 召回 (wire, 2026-03-02 09:00 UTC)" in text and "Sources: wire" in text
    resolved = ALERT.model_copy(update={"status": "resolved"})
    assert "resolved" in subject(resolved)


def test_webhook_posts_the_alert_json_signed_with_hmac(hook: Hook) -> None:
    sink = WebhookSink(WebhookSinkSettings(url=hook.url, secret=SecretStr("s3cret")))
    sink.send(ALERT)
    ((headers, body),) = hook.received
    assert Alert.model_validate_json(body) == ALERT
    assert headers["content-type"] == "application/json"
    assert headers[SIGNATURE_HEADER.lower()] == sign(b"s3cret", headers[TIMESTAMP_HEADER.lower()], body)
    assert abs(int(headers[TIMESTAMP_HEADER.lower()]) - time.time()) < 60
    assert sign(b"other", headers[TIMESTAMP_HEADER.lower()], body) != headers[SIGNATURE_HEADER.lower()]
    sink.close()


def test_webhook_slack_format_and_no_signature_without_a_secret(hook: Hook) -> None:
    sink = WebhookSink(WebhookSinkSettings(url=hook.url, format="slack"))
    sink.send(ALERT)
    ((headers, body),) = hook.received
    payload = json.loads(body)
    assert payload["text"].startswith("[HIGH] negative news spike: aurora-motors")
    assert payload["blocks"][0]["type"] == "header"
    assert any("极光汽车" in b.get("text", {}).get("text", "") for b in payload["blocks"])
    assert SIGNATURE_HEADER.lower() not in headers
    sink.close()


def test_webhook_failures_raise_with_the_status(hook: Hook) -> None:
    hook.statuses = [503]
    sink = WebhookSink(WebhookSinkSettings(url=hook.url))
    with pytest.raises(WebhookError, match="expected a 2xx answer, got 503"):
        sink.send(ALERT)
    sink.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = WebhookSink(WebhookSinkSettings(url=f"http://127.0.0.1:{port}/", timeout_s=2))
    with pytest.raises(WebhookError, match="cannot POST"):
        closed.send(ALERT)


class Inbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), as (cert, key)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _login(server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", b"pw")
    return AuthResult(success=ok)


def test_email_is_sent_over_starttls_with_login(certificate: tuple[Path, Path]) -> None:
    import ssl

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=_login, auth_require_tls=True)
    controller.start()
    try:
        settings = EmailSinkSettings(host="127.0.0.1", port=port, username="alerts", password=SecretStr("pw"),
                                     sender="finsentinel@example.com", recipients=["desk@example.com"],
                                     ca_certs=cert, timeout_s=10)
        EmailSink(settings).send(ALERT)
        (envelope,) = inbox.messages
        assert envelope.rcpt_tos == ["desk@example.com"]
        mail = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[arg-type]
        assert mail["Subject"] == "FinSentinel " + subject(ALERT)
        assert mail["X-FinSentinel-Alert"] == ALERT.id
        assert "12 negative of 15 items" in mail.get_content()
        untrusted = settings.model_copy(update={"ca_certs": None})
        with pytest.raises(EmailError, match="SSLCertVerificationError"):
            EmailSink(untrusted).send(ALERT)
    finally:
        controller.stop()


def test_email_without_tls_to_a_local_relay() -> None:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        EmailSink(EmailSinkSettings(host="127.0.0.1", port=port, tls="none", sender="a@example.com",
                                    recipients=["b@example.com", "c@example.com"])).send(ALERT)
        assert inbox.messages[0].rcpt_tos == ["b@example.com", "c@example.com"]
        starttls = EmailSinkSettings(host="127.0.0.1", port=port, sender="a@example.com", recipients=["b@x.org"])
        with pytest.raises(EmailError, match="STARTTLS"):  # the relay offers no TLS: refuse to send in clear
            EmailSink(starttls).send(ALERT)
    finally:
        controller.stop()


class Flaky:
    """A sink failing its first ``failures`` deliveries; ``gate`` (if given) holds every delivery."""

    transitions_only = True

    def __init__(self, name: str, failures: int = 0, gate: threading.Event | None = None) -> None:
        self.name, self.failures, self.gate = name, failures, gate
        self.sent: list[Alert] = []
        self.attempts: list[float] = []
        self.closed = False

    def send(self, alert: Alert) -> None:
        self.attempts.append(time.monotonic())
        if self.gate is not None:
            self.gate.wait(10)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("endpoint down")
        self.sent.append(alert)

    def close(self) -> None:
        self.closed = True


def test_a_failing_sink_retries_with_backoff_and_a_stuck_one_blocks_nobody(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    stuck, flaky, fine = Flaky("stuck", gate=gate), Flaky("flaky", failures=2), Flaky("fine")
    notifier = Notifier([stuck, flaky, fine], retries=3, backoff_s=0.05, max_backoff_s=0.5)
    started = time.monotonic()
    assert notifier.notify([ALERT]) == 1
    assert time.monotonic() - started < 0.5  # notify never waits for a sink
    deadline = time.monotonic() + 5
    while (len(fine.sent) < 1 or len(flaky.sent) < 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fine.sent == [ALERT] and flaky.sent == [ALERT] and stuck.sent == []  # stuck holds up only itself
    gaps = [b - a for a, b in zip(flaky.attempts, flaky.attempts[1:], strict=False)]
    assert len(gaps) == 2 and gaps[0] >= 0.045 and gaps[1] >= 0.09  # exponential backoff
    assert notifier.stats["flaky"].retries == 2 and notifier.stats["flaky"].failed == 0
    gate.set()
    assert notifier.flush(5)
    assert stuck.sent == [ALERT]
    hopeless = Flaky("hopeless", failures=99)
    with caplog.at_level(logging.ERROR, logger="alerting.notify.dispatch"):
        other = Notifier([hopeless], retries=1, backoff_s=0.01)
        other.notify([ALERT])
        assert other.flush(5)
    assert other.stats["hopeless"].failed == 1 and len(hopeless.attempts) == 2
    assert "failed to deliver alert" in caplog.text
    notifier.close()
    other.close()
    assert fine.closed and hopeless.closed


def test_humans_hear_of_transitions_machines_of_every_change(tmp_path: Path) -> None:
    human, machine = Flaky("human"), Flaky("machine")
    machine.transitions_only = False
    notifier = Notifier([human, machine], min_severity="high")
    more = ALERT.model_copy(update={"observed": 14})
    worse = more.model_copy(update={"severity": "critical", "status": "escalated"})
    over = worse.model_copy(update={"status": "resolved"})
    minor = make_alert(key="pacific-grid").model_copy(update={"severity": "warning"})
    for batch in ([ALERT, minor], [ALERT], [more], [worse], [over]):
        notifier.notify(batch)
    assert notifier.flush(5)
    assert [(a.observed, a.status) for a in human.sent] == [(12, "open"), (14, "escalated"), (14, "resolved")]
    assert [a.id for a in machine.sent] == [ALERT.id, minor.id, ALERT.id, ALERT.id, ALERT.id]
    known = Notifier([human], known=[over])
    assert known.notify([over]) == 0  # already delivered before a restart
    notifier.close()
    known.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    gate = threading.Event()
    slow = Flaky("slow", gate=gate)
    notifier = Notifier([slow], queue_size=1)
    alerts = [make_alert(key=f"company-{n}") for n in range(4)]
    started = time.monotonic()
    notifier.notify(alerts)
    assert time.monotonic() - started < 0.5
    gate.set()
    assert notifier.flush(5)
    assert notifier.stats["slow"].dropped >= 2 and len(slow.sent) == 4 - notifier.stats["slow"].dropped
    notifier.close()


def test_topic_index_and_log_sinks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3")
    bus.ensure_topics(["alerts"])
    index = SqliteIndex(tmp_path / "index.sqlite3")
    settings = NotifySettings(index=True, webhooks=[WebhookSinkSettings(url="http://127.0.0.1:9/x")],
                              email=EmailSinkSettings(host="127.0.0.1", sender="a@b.c", recipients=["d@e.f"]))
    sinks = build_sinks(settings, bus, "alerts", index)
    assert [s.name for s in sinks] == ["log", "topic:alerts", "index", "webhook:127.0.0.1:9", "email:127.0.0.1"]
    assert [type(s) for s in build_sinks(NotifySettings(topic=False))] == [LogSink]
    TopicSink(bus, "alerts").send(ALERT)
    IndexSink(index).send(ALERT)
    with caplog.at_level(logging.WARNING, logger="alerting.notify.log"):
        LogSink().send(ALERT)
    assert "negative news spike: aurora-motors" in caplog.text and ALERT.id in caplog.text
    assert bus.end_offsets(["alerts"]) == {"alerts": 1}
    assert index.alerts() == [ALERT]
    notifier = build_notifier(NotifySettings(log=False, ledger_path=tmp_path / "deliveries.sqlite3"), bus, "alerts",
                              known=[ALERT])
    assert notifier.notify([ALERT, make_alert(key="lumen-pharma")]) == 1
    assert notifier.flush(5)
    assert bus.end_offsets(["alerts"]) == {"alerts": 2}
    notifier.close()
    index.close()
    bus.close()
