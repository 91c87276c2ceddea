"""Pydantic models of every custom resource's spec and status; the CRDs are generated from them."""

GROUP = "hive.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "hive"
