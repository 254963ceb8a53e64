"""Example relying parties and a resource server for the IdP (see examples/README.md)."""
