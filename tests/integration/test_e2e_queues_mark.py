"""The shared `e2e_queues` fixture (tests/support/fixtures.py) makes what the test's mark asks
for, so that the fault runs and the FIFO end-to-end tests need no override of it."""

from __future__ import annotations

import pytest

from tests.support.fixtures import E2E_VISIBILITY, e2e_queue_options


async def attributes(sqs, url: str) -> dict[str, str]:
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return response["Attributes"]


async def test_without_a_mark_the_queues_are_standard_with_the_e2e_visibility(sqs, e2e_queues):
    for url in (e2e_queues.url, e2e_queues.dlq_url):
        assert "FifoQueue" not in await attributes(sqs, url)
    assert (await attributes(sqs, e2e_queues.url))["VisibilityTimeout"] == str(E2E_VISIBILITY)


@pytest.mark.e2e_queues(fifo=True, visibility=7)
async def test_the_mark_chooses_fifo_queues_and_their_visibility(sqs, e2e_queues):
    queue = await attributes(sqs, e2e_queues.url)
    assert (queue["FifoQueue"], queue["VisibilityTimeout"]) == ("true", "7")
    assert (await attributes(sqs, e2e_queues.dlq_url))["FifoQueue"] == "true"


def test_a_mistyped_option_fails_instead_of_being_ignored():
    with pytest.raises(TypeError, match="fifo_queue"):
        e2e_queue_options(fifo_queue=True)  # type: ignore[call-arg]
