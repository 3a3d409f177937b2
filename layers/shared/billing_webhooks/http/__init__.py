"""Transport: an API Gateway event in, an HTTP answer out. The pipeline, who sent a request, and
the answers (docs/architecture.md)."""
