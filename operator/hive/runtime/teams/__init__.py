"""Teams of agents: hierarchical delegation and review, swarms, and negotiation."""
