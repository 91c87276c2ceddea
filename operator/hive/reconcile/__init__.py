"""Pure reconcile builders: (resource, observed children) -> desired children and status. No I/O."""
