"""`make bench`: the worker measured against the machine's ceilings and the simple design."""
