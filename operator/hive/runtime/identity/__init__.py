"""Agent identity: Vault login, delegation certificates, audit."""
