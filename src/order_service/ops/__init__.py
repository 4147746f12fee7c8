"""Operational commands run from a deploy pipeline or an operator's shell, not by the worker."""
