"""The new providers' settings from the environment (issue 17): secrets, SNS topics, the certificate folder and
the two switches that reach outside the machine (off unless set to 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.config import ConfigError, Settings


def test_unset_the_new_providers_take_nothing_and_reach_nowhere() -> None:
    settings = Settings.from_env({})
    assert settings.mailgun_webhook_signing_keys == () and settings.ses_sns_topic_arns == ()
    assert settings.brevo_webhook_token is None and settings.postmark_webhook_token is None
    assert settings.ses_sns_cert_dir is None and not settings.ses_sns_fetch_certs and not settings.ses_sns_auto_confirm


def test_the_new_providers_settings_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MAILGUN_WEBHOOK_SIGNING_KEYS": "old-key, new-key",
            "BREVO_WEBHOOK_TOKEN": "b",
            "POSTMARK_WEBHOOK_TOKEN": "p",
            "SES_SNS_TOPIC_ARNS": "arn:aws:sns:us-east-1:123456789012:a,arn:aws:sns:eu-west-1:123456789012:b",
            "SES_SNS_CERT_DIR": str(tmp_path),
            "SES_SNS_FETCH_CERTS": "1",
            "SES_SNS_AUTO_CONFIRM": "true",
        }
    )
    assert settings.mailgun_webhook_signing_keys == ("old-key", "new-key")
    assert (settings.brevo_webhook_token, settings.postmark_webhook_token) == ("b", "p")
    assert settings.ses_sns_topic_arns == ("arn:aws:sns:us-east-1:123456789012:a", "arn:aws:sns:eu-west-1:123456789012:b")
    assert settings.ses_sns_cert_dir == str(tmp_path) and settings.ses_sns_fetch_certs and settings.ses_sns_auto_confirm


@pytest.mark.parametrize("name", ["SES_SNS_FETCH_CERTS", "SES_SNS_AUTO_CONFIRM"])
@pytest.mark.parametrize("value, on", [("0", False), ("off", False), ("", False), ("1", True), ("YES", True)])
def test_the_switches(name: str, value: str, on: bool) -> None:
    assert getattr(Settings.from_env({name: value}), name.lower()) is on


@pytest.mark.parametrize("name", ["SES_SNS_FETCH_CERTS", "SES_SNS_AUTO_CONFIRM"])
def test_a_switch_that_is_neither_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: "maybe"})


def test_a_certificate_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SES_SNS_CERT_DIR"):
        Settings.from_env({"SES_SNS_CERT_DIR": str(tmp_path / "missing")})
