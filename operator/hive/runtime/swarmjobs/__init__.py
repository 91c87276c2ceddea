"""Swarm subgoals run as Indexed Kubernetes Jobs (spec.swarm.jobs): the parts' prompts and
answers in the team's Redis, the levels of a goal graph run one Job each."""
