"""Docker-free local stack for `make dev` and the tests (never deployed)."""
