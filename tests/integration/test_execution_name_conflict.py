"""An execution name already used for another intent is an error the operator sees, never a silent 202."""

from __future__ import annotations

import json

from tests.integration.test_operator_api import (  # noqa: F401 - the fixture is used by name
    account,
    call,
    executions,
    operator_auth,
    seed,
)
from tests.support.aws import STREAMPIXEL_PROJECT, MotoAccount


def test_release_whose_name_holds_a_different_execution_answers_409(account: MotoAccount) -> None:  # noqa: F811
    sfn = account.client("stepfunctions")
    other_intent = {"buildId": "h1", "stage": "upload", "lastError": None}
    sfn.start_execution(
        stateMachineArn=account.environment["STATE_MACHINE_ARN"],
        name="h1-release-1",
        input=json.dumps(other_intent),
    )
    hold = {"streampixelProjectId": STREAMPIXEL_PROJECT, "policy": "hold", "account": "default"}
    seed(account, "h1", "approved", route="held", release=hold, uploadId="u-h1", approvedAt="t")
    status, body = call("POST", "/builds/h1/release", headers=operator_auth(account))
    assert (status, body["error"]) == (409, "conflict")
    assert "different release" in body["message"]
    assert executions(account) == {"h1-release-1": other_intent}  # nothing new started, nothing hidden
