"""Multi-level caches of an agent's calls: L1 in the process, L2 on local disk, L3 in the team's
Redis; model answers of deterministic requests (and, opted in, semantically similar ones) and
results of tools whose ToolVersion declares them cacheable."""
