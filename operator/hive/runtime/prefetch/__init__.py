"""Predictive prefetch: which tool call follows which, learned per team from its agents' events,
and the likely next call started early so that its result waits in the cache."""
