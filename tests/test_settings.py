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
    given = load_settings(path, bus={"kafka": {"bootstrap_servers": "c:9094"}})
    assert given.bus.kafka.bootstrap_servers == "c:9094" and given.bus.backend == "kafka"  # arguments beat env


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


def test_env_values_of_text_settings_are_taken_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINSENTINEL_CONFIG", raising=False)
    # Values that YAML would read as a number, a boolean, a comment or a mapping.
    monkeypatch.setenv("FINSENTINEL_BUS__KAFKA__SASL_PASSWORD", "123456")
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__ES_PASSWORD", "#no-comment")
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__ES_API_KEY", "yes")
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__ES_USERNAME", "a: b")
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__ES_REFRESH", "false")
    monkeypatch.setenv("FINSENTINEL_BUS__TOPICS__RAW", "2024")
    # Typed settings still read as before.
    monkeypatch.setenv("FINSENTINEL_METRICS_PORT", "9100")
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__ES_VERIFY_CERTS", "false")
    monkeypatch.setenv("FINSENTINEL_ALERTING__NOTIFY__LEDGER_PATH", "null")
    monkeypatch.setenv("FINSENTINEL_ALERTING__DETECT__P_VALUE", "1e-6")
    settings = load_settings()
    index = settings.alerting.index
    assert settings.bus.kafka.sasl_password is not None
    assert settings.bus.kafka.sasl_password.get_secret_value() == "123456"
    assert index.es_password is not None and index.es_password.get_secret_value() == "#no-comment"
    assert index.es_api_key is not None and index.es_api_key.get_secret_value() == "yes"
    assert index.es_username == "a: b"
    assert index.es_refresh == "false"
    assert settings.bus.topics.raw == "2024"
    assert settings.metrics_port == 9100 and index.es_verify_certs is False
    assert settings.alerting.notify.ledger_path is None
    assert settings.alerting.detect.p_value == 1e-6


def test_env_lists_and_mappings_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINSENTINEL_CONFIG", raising=False)
    monkeypatch.setenv("FINSENTINEL_ALERTING__DETECT__SCOPES", '["entity", "topic"]')
    monkeypatch.setenv("FINSENTINEL_NLP__DEFAULT_LANGUAGES", '["en"]')
    monkeypatch.setenv("FINSENTINEL_NLP__MODELS", '{"en": "models/en"}')
    settings = load_settings()
    assert settings.alerting.detect.scopes == ["entity", "topic"]
    assert settings.nlp.default_languages == ["en"]
    assert settings.nlp.models == {"en": Path("models/en")}


def test_env_list_in_yaml_syntax_or_not_a_list_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINSENTINEL_CONFIG", raising=False)
    monkeypatch.setenv("FINSENTINEL_ALERTING__DETECT__SCOPES", "[entity, overall]")
    assert load_settings().alerting.detect.scopes == ["entity", "overall"]
    monkeypatch.setenv("FINSENTINEL_ALERTING__DETECT__SCOPES", "entity,topic")
    with pytest.raises(ConfigError, match=r"alerting\.detect\.scopes"):
        load_settings()


def test_es_refresh_may_be_written_as_a_yaml_boolean(tmp_path: Path) -> None:
    for written, expected in (("true", "true"), ("false", "false"), ("wait_for", "wait_for")):
        path = write(tmp_path, f"alerting:\n  index:\n    es_refresh: {written}\n")
        assert load_settings(path).alerting.index.es_refresh == expected


def test_a_settings_file_not_in_utf8_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "finsentinel.yaml"
    path.write_bytes("nlp:\n  watchlist: 中文.yaml\n".encode("gbk"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 .* save it as UTF-8"):
        load_settings(path)


def test_a_yaml_syntax_error_names_the_place_but_does_not_quote_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bus:\n  kafka:\n    sasl_password: hun: ter2\n")
    with pytest.raises(ConfigError, match=r"not valid YAML: mapping values are not allowed here \(line 3, column 23\)") \
            as caught:
        load_settings(path)
    assert "ter2" not in str(caught.value)
