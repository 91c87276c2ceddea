"""Resilience: the chain every outgoing call of an agent passes, and what rides on it (faults
injected by chaos experiments, circuit breakers, error patterns, graceful degradation)."""
