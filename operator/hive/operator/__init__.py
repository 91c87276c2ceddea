"""The kopf operator: thin handlers that call pure reconcile builders and hive.kube."""
