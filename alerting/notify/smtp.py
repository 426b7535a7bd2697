"""The e-mail sink: one plain-text message per new, escalated or resolved alert, over SMTP.

TLS by default: ``starttls`` upgrades a plain connection (port 587), ``ssl`` speaks TLS from the
start (port 465); certificates are verified against the system store or ``ca_certs``.
``none`` is for a relay on the same host only.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from alerting.notify.base import body_text, subject
from finsentinel.errors import FinSentinelError
from finsentinel.schema import Alert
from finsentinel.settings import EmailSinkSettings


class EmailError(FinSentinelError):
    """The SMTP server did not take the alert."""


def message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    """The e-mail of an alert."""
    mail = EmailMessage()
    mail["Subject"] = "FinSentinel " + subject(alert)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["X-FinSentinel-Alert"] = alert.id
    mail.set_content(body_text(alert))
    return mail


class EmailSink:
    """Sends alerts with :mod:`smtplib`; a fresh connection per alert (alerts are rare)."""

    transitions_only = True

    def __init__(self, settings: EmailSinkSettings) -> None:
        self.settings = settings
        self.name = f"email:{settings.host}"

    def _context(self) -> ssl.SSLContext:
        cafile = str(self.settings.ca_certs) if self.settings.ca_certs is not None else None
        return ssl.create_default_context(cafile=cafile)

    def send(self, alert: Alert) -> None:
        s = self.settings
        try:
            if s.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with smtp:
                if s.tls == "starttls":
                    smtp.starttls(context=self._context())
                if s.username is not None:
                    smtp.login(s.username, s.password.get_secret_value() if s.password is not None else "")
                smtp.send_message(message(alert, s.sender, s.recipients))
        except (smtplib.SMTPException, OSError) as exc:
            raise EmailError(
                f"{self.name}:{s.port}: cannot send the alert ({type(exc).__name__}: {exc}); check "
                "alerting.notify.email (host, port, tls, credentials)"
            ) from exc

    def close(self) -> None:
        """Connections are per message."""
