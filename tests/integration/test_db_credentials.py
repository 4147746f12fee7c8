"""The database secret read with the production client against the local endpoint: RDS's JSON
gives the login, anything else (or no secret) is a fault of the system, named, never a crash."""

from __future__ import annotations

import json
import uuid

import pytest

from order_service.adapters.db_credentials import SecretCredentials
from order_service.errors import StoreUnavailable


async def test_the_secret_is_read_once_then_again_only_when_asked(secrets):
    name = f"app-{uuid.uuid4().hex[:8]}"
    arn = (await secrets.create_secret(Name=name, SecretString='{"username":"a","password":"1"}'))[
        "ARN"
    ]
    credentials = SecretCredentials(arn, "us-east-1")
    assert await credentials.current() == ("a", "1")
    await secrets.put_secret_value(SecretId=arn, SecretString='{"username":"b","password":"2"}')
    assert await credentials.current() == ("a", "1")  # cached: no call per connection
    assert await credentials.current(refresh=True) == ("b", "2")


@pytest.mark.parametrize("value", ["not json", json.dumps({"user": "a"}), json.dumps(["a"])])
async def test_a_secret_that_is_not_rdss_json_is_a_named_fault(secrets, value):
    arn = (await secrets.create_secret(Name=f"bad-{uuid.uuid4().hex[:8]}", SecretString=value))[
        "ARN"
    ]
    with pytest.raises(StoreUnavailable) as info:
        await SecretCredentials(arn, "us-east-1").current()
    assert info.value.kind == "credentials" and "username and password" in str(info.value)


async def test_a_missing_secret_is_a_named_fault(sqs_server):
    missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:nothing-here-AbCdEf"
    with pytest.raises(StoreUnavailable) as info:
        await SecretCredentials(missing, "us-east-1").current()
    assert info.value.kind == "credentials" and "DB_SECRET_ARN" in info.value.action
