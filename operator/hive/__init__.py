"""Hive: teams of AI agents on Kubernetes."""
