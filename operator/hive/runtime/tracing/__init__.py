"""OpenTelemetry traces and Prometheus metrics of agents, teams and the operator.

`setup` turns the settings into a tracer provider (OTLP over HTTP, batched; none without an
endpoint), `calls` traces and counts every call an agent makes (a middleware of its call chain:
model calls, tool calls, peer calls, sandbox runs, memory operations, named and attributed by the
OpenTelemetry GenAI conventions), `propagation` carries the W3C ``traceparent`` across peer
calls so a team's run across pods is one trace, `events` turns the team's events (delegations,
reviews, votes, subgoals, ...) into spans, `spans` makes those per-step spans cheaply under a
sampled run, and `query` reads a trace back from Jaeger.
"""
