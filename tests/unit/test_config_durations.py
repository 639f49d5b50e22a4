"""Durations from the environment: READY_MAX_LAG_SECONDS (issue 7)."""

from __future__ import annotations

import pytest

from application.config import ConfigError, Settings


def test_ready_max_lag_defaults_to_30_seconds_and_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).ready_max_lag_seconds == 30.0
    assert Settings.from_env({"READY_MAX_LAG_SECONDS": "2.5"}).ready_max_lag_seconds == 2.5
    assert Settings.from_env({"READY_MAX_LAG_SECONDS": "0"}).ready_max_lag_seconds == 0.0


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_ready_max_lag_that_is_not_a_duration_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="READY_MAX_LAG_SECONDS"):
        Settings.from_env({"READY_MAX_LAG_SECONDS": value})
