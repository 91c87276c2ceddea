"""Memory that agents use: sentence embeddings today (:mod:`.embeddings`), served over an
OpenAI-compatible HTTP API by ``hive model serve --embeddings`` (:mod:`.embedserver`).

Like the rest of hive.runtime this package never imports the operator or the Kubernetes client
layer.
"""
