"""Retry policy."""

from pooledcrawl.retry.policy import RetryDecision, RetryPolicy

__all__ = ["RetryDecision", "RetryPolicy"]
