"""The sink interface, and the words every human-facing sink uses for an alert.

A sink delivers one alert at a time and raises on failure; retrying, backing off and keeping
one slow sink from holding up the others is the :class:`alerting.notify.dispatch.Notifier`'s job.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from finsentinel.schema import Alert


@runtime_checkable
class Sink(Protocol):
    """Somewhere alerts go: a log, a webhook, a mailbox, a bus topic, the index."""

    name: str
    """Short name for logs and statistics, e.g. ``webhook:hooks.example.com``."""
    transitions_only: bool
    """True: only new, escalated and resolved alerts (humans); False: every change (machines)."""

    def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise on failure (the notifier retries)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def subject(alert: Alert) -> str:
    """One line naming the alert: severity, status, what it is about and when it started."""
    who = {"entity": alert.entity, "topic": f"topic {alert.topic}", "overall": "all news"}[alert.scope]
    state = {"open": "negative news spike", "escalated": "negative news spike escalated",
             "resolved": "negative news spike resolved"}[alert.status]
    return f"[{alert.severity.upper()}] {state}: {who} since {alert.start:%Y-%m-%d %H:%M} UTC"


def evidence(alert: Alert) -> str:
    """The numbers behind the alert, in one sentence."""
    return (
        f"{alert.observed} negative of {alert.total} items vs {alert.expected:.1f} expected; "
        f"negative share {alert.share:.0%} vs {alert.baseline_share:.0%} usual (p={alert.p_value:.1e}); "
        f"{alert.bucket_minutes}-minute buckets {alert.start:%H:%M}-{alert.end:%H:%M} UTC"
    )


def body_text(alert: Alert) -> str:
    """Plain-text message: subject, evidence, headlines with links, sources."""
    lines = [subject(alert), "", evidence(alert)]
    if alert.topic and alert.scope == "entity":
        lines.append(f"dominant topic: {alert.topic}")
    if alert.headlines:
        lines += ["", "Most negative headlines:"]
        lines += [f"- {h.title} ({h.source}, {h.published_at:%Y-%m-%d %H:%M} UTC){' ' + h.url if h.url else ''}"
                  for h in alert.headlines]
    if alert.sources:
        lines += ["", "Sources: " + ", ".join(alert.sources)]
    lines += ["", f"alert id {alert.id}"]
    return "\n".join(lines)
