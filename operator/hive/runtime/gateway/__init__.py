"""The model gateway: routes, rate limits, spend accounting and the OpenAI-compatible server."""
