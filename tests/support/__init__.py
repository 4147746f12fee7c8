"""What the tests and the benchmark share: real servers and the worker as a process.

- `database`: a PostgreSQL server with databases cloned from a migrated template; queries.
- `queues`: the environment of the local SQS endpoint; a queue and its DLQ.
- `worker`: `order-service worker` as a child process, the way ECS runs it, and its env.
- `waiting`: polling for a condition with a deadline (never a bare sleep).
- `sqs_proxy`: a fault-injecting proxy in front of the SQS endpoint.
- `fixtures`: the pytest fixtures built on these (registered by tests/conftest.py).
"""
