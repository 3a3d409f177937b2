"""The wire: decoding a body, the credentials a request presents, and the delivery object the
pipeline passes down."""
