"""Data access: one module per DynamoDB table (every DynamoDB call of the layer is in one of them),
the AWS clients and the secrets."""
