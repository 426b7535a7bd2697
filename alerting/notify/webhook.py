"""The webhook sink: POST each alert as JSON, or as a Slack-compatible message, signed with HMAC.

Signature (when a secret is set): ``X-FinSentinel-Timestamp: <unix seconds>`` and
``X-FinSentinel-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``. The receiver
recomputes it over the raw body and rejects old timestamps, which stops forgery and replay.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from alerting.notify.base import body_text, evidence, subject
from finsentinel.errors import FinSentinelError
from finsentinel.schema import Alert
from finsentinel.settings import WebhookSinkSettings

SIGNATURE_HEADER = "X-FinSentinel-Signature"
TIMESTAMP_HEADER = "X-FinSentinel-Timestamp"


class WebhookError(FinSentinelError):
    """The webhook endpoint did not accept the alert."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value of ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` for notifications, ``blocks`` for the layout."""
    headlines = "\n".join(
        f"• <{h.url}|{h.title}> ({h.source})" if h.url else f"• {h.title} ({h.source})" for h in alert.headlines
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject(alert)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": evidence(alert)}},
    ]
    if headlines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": headlines[:2900]}})
    if alert.sources:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": "sources: " + ", ".join(alert.sources) + f" · alert {alert.id}"}]})
    return {"text": body_text(alert)[:3000], "blocks": blocks}


class WebhookSink:
    """POSTs alerts to one URL; raises :class:`WebhookError` on a non-2xx answer or a network error."""

    transitions_only = True

    def __init__(self, settings: WebhookSinkSettings) -> None:
        self.settings = settings
        self.name = f"webhook:{urlsplit(settings.url).netloc}"
        # Unique per URL (two Slack hooks share a host), without writing the URL's token anywhere.
        self.ledger_key = "webhook:" + hashlib.sha256(settings.url.encode("utf-8")).hexdigest()[:16]
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False)
        return self._client

    def send(self, alert: Alert) -> None:
        payload = slack_payload(alert) if self.settings.format == "slack" else alert.model_dump(mode="json")
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "finsentinel"}
        if self.settings.secret is not None:
            stamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(self.settings.secret.get_secret_value().encode(), stamp, body)
        try:
            response = self._http().post(self.settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise WebhookError(f"{self.name}: cannot POST the alert ({exc}); check the webhook URL") from exc
        if not response.is_success:
            raise WebhookError(f"{self.name}: expected a 2xx answer, got {response.status_code}: "
                               f"{response.text[:200]}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
