"""The SNS client's User-Agent kept per set of features (adapters/sns_user_agent.py) is the
string the SDK builds, for every set of features a call may register, at both places botocore
builds it; and each set is built once."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.context import start_as_current_context
from botocore.useragent import register_feature_id

from order_service.adapters.sns_user_agent import build_user_agent_once


def client(**config: Any) -> Any:
    return botocore.session.get_session().create_client(
        "sns", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b",
        config=Config(retries={"mode": "standard"}, **config),
    )  # fmt: skip


FEATURES = [(), ("RETRY_MODE_STANDARD",), ("RETRY_MODE_STANDARD", "CREDENTIALS_ENV_VARS"),
            ("CREDENTIALS_ENV_VARS", "RETRY_MODE_STANDARD")]  # fmt: skip


@pytest.mark.parametrize("config", [{}, {"user_agent_extra": "relay/1"}, {"user_agent": "x/1"}])
def test_the_kept_user_agent_is_the_sdks_for_each_set_of_features(config: dict[str, Any]):
    ours, sdk = client(**config), client(**config)
    build_user_agent_once(ours._user_agent_creator)
    for features in [*FEATURES, *FEATURES]:  # the second time from what was kept
        with start_as_current_context():
            for feature in features:
                register_feature_id(feature)
            expected = sdk._user_agent_creator.to_string()
            assert ours._user_agent_creator.to_string() == expected
            request = AWSRequest("POST", "https://sns.us-east-1.amazonaws.com/",
                                 headers={"User-Agent": "before"})  # fmt: skip
            # botocore's request-created handler, registered as a bound method at creation
            ours._user_agent_creator.rebuild_and_replace_user_agent_handler("Publish", request)
            assert request.headers["User-Agent"] == expected
    without_context = sdk._user_agent_creator.to_string()
    assert ours._user_agent_creator.to_string() == without_context


def test_each_set_of_features_is_built_once() -> None:
    ours = client()
    creator = ours._user_agent_creator
    built: list[str] = []
    build = type(creator).to_string
    creator.to_string = lambda: built.append("x") or build(creator)
    build_user_agent_once(creator)
    for _ in range(3):
        for features in FEATURES:
            with start_as_current_context():
                for feature in features:
                    register_feature_id(feature)
                creator.to_string()
    assert len(built) == 3  # (), one feature, two features (in either order)
    creator.set_client_features({"RETRY_MODE_STANDARD"})
    creator.to_string()
    assert len(built) == 4  # the client's own features are part of the key
