"""Pydantic v2 models of every payload, named and typed as the seed documents give them."""
