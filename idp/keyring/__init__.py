"""Signing keys: material, lifecycle transitions, and the in-memory ring."""
