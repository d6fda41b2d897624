"""Settings per function: each function refuses to start without the names/ARNs it needs, naming them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pixelbridge.settings import ALIASES, FUNCTION_SETTINGS, MissingSetting, Settings
from pixelbridge_local.template import function_environment, resources
from tests.unit.test_template import FAKE_NAMES

HANDLERS = {
    logical_id: resource["Properties"]["Handler"]
    for logical_id, resource in resources("AWS::Serverless::Function").items()
}


def test_every_template_handler_declares_its_settings() -> None:
    assert set(HANDLERS.values()) == set(FUNCTION_SETTINGS)


@pytest.mark.parametrize("logical_id", sorted(HANDLERS))
def test_a_missing_setting_fails_cold_start_naming_it(logical_id: str) -> None:
    handler = HANDLERS[logical_id]
    env = {**function_environment(logical_id, FAKE_NAMES), "_HANDLER": handler}
    Settings.from_env(env)  # the template's environment is complete
    for name in sorted(FUNCTION_SETTINGS[handler]):
        variable = ALIASES[f"{name}_"]
        partial = {k: v for k, v in env.items() if k != variable}
        with pytest.raises(ValidationError, match=f"{handler} cannot start: {variable} not set"):
            Settings.from_env(partial)


def test_an_empty_value_is_refused_not_taken_as_configured() -> None:
    env = {
        **function_environment("ConvertFunction", FAKE_NAMES),
        "_HANDLER": HANDLERS["ConvertFunction"],
        "STATE_MACHINE_ARN": "",
    }
    with pytest.raises(ValidationError, match="STATE_MACHINE_ARN"):
        Settings.from_env(env)


def test_names_arns_tables_and_buckets_have_no_empty_defaults() -> None:
    suffixes = ("_ARN", "_TABLE", "_BUCKET", "_FUNCTION_NAME", "_PROJECT_ID")
    resource_fields = {
        name: f for name, f in Settings.model_fields.items() if str(f.alias).endswith(suffixes)
    }
    assert len(resource_fields) == 14
    for name, field in resource_fields.items():
        assert field.default is None, name


def test_a_setting_the_function_lacks_raises_when_read() -> None:
    settings = Settings.from_env({"NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"})
    assert settings.notification_topic_arn == "arn:aws:sns:us-east-1:1:t"
    with pytest.raises(MissingSetting, match="STATE_MACHINE_ARN is not set"):
        _ = settings.state_machine_arn


def test_an_unknown_handler_is_refused() -> None:
    unknown = r"no settings are declared for handler pixelbridge\.handlers\.x"
    with pytest.raises(ValidationError, match=unknown):
        Settings.from_env({"_HANDLER": "pixelbridge.handlers.x.handler"})
