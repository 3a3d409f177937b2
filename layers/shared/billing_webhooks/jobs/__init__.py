"""Jobs: one module per schedule or stream (docs/architecture.md); each runs from its own function."""
