"""Work shared by an agent's replicas: a Redis Streams consumer group per agent, tasks reclaimed
from a replica that died mid-task, results recorded exactly once."""
