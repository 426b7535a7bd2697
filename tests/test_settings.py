"""Settings: YAML file, env overrides, unknown keys and bad types, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from finsentinel.errors import ConfigError
from finsentinel.settings import load_settings, render_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "finsentinel.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINSENTINEL_CONFIG", raising=False)
    settings = load_settings()
    assert settings.bus.backend == "local"
    assert settings.bus.topics.raw == "news.raw"


def test_yaml_file_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "bus:\n  backend: kafka\n  kafka:\n    bootstrap_servers: a:9092\nlog_level: DEBUG\n")
    monkeypatch.setenv("FINSENTINEL_BUS__KAFKA__BOOTSTRAP_SERVERS", "b:9093")
    settings = load_settings(path)
    assert settings.bus.backend == "kafka"
    assert settings.bus.kafka.bootstrap_servers == "b:9093"  # env beats the file
    assert settings.log_level == "DEBUG"  # the file's other keys survive


def test_config_env_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "alerting:\n  detect:\n    bucket_minutes: 15\n")
    monkeypatch.setenv("FINSENTINEL_CONFIG", str(path))
    assert load_settings().alerting.detect.bucket_minutes == 15


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "bus:\n  bakend: kafka\n")
    with pytest.raises(ConfigError, match=r"bus\.bakend: unknown key"):
        load_settings(path)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "alerting:\n  detect:\n    bucket_minutes: often\n")
    with pytest.raises(ConfigError, match=r"alerting\.detect\.bucket_minutes"):
        load_settings(path)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "bus: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))


def test_secrets_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENTINEL_BUS__KAFKA__SASL_PASSWORD", "hunter2")
    path = write(tmp_path, "alerting:\n  index:\n    es_api_key: topsecret\n")
    settings = load_settings(path)
    assert settings.bus.kafka.sasl_password is not None
    assert settings.bus.kafka.sasl_password.get_secret_value() == "hunter2"
    text = render_settings(settings) + repr(settings)
    assert "hunter2" not in text and "topsecret" not in text
    assert "**********" in text


def test_secrets_never_appear_in_validation_errors(tmp_path: Path) -> None:
    import traceback

    path = write(tmp_path, (
        "bus:\n  kafka:\n    sasl_password: 987654\n"
        "alerting:\n  notify:\n    email:\n      host: smtp.example.com\n      password: SMTPSECRET\n"
        "      recipients: [a@b.c]\n    webhooks:\n      - secret: HOOKSECRET\n"
        "ingest:\n  sources:\n    - {type: ftp, name: x, api_key: APIKEYSECRET}\n"
    ))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    # every bad key is still named ...
    for key in ("bus.kafka.sasl_password", "alerting.notify.email.sender", "alerting.notify.webhooks.0.url",
                "ingest.sources.0"):
        assert key in message, message
    # ... but no secret, neither in the message nor anywhere in the traceback a crash would print
    shown = message + "".join(traceback.format_exception(caught.value))
    for secret in ("987654", "SMTPSECRET", "HOOKSECRET", "APIKEYSECRET"):
        assert secret not in shown, shown
