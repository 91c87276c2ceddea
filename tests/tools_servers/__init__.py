"""Real services the tool tests call, each run as its own process."""
