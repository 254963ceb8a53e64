"""The OAuth 2.0 / OpenID Connect protocol layer: no HTTP plumbing, no SQL."""
