"""The agent runtime: agents, teams and their tools. Never imports the operator or hive.kube."""
