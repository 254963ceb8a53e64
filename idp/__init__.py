"""A small, standards-exact OpenID Connect and OAuth 2.0 token service."""

__version__ = "0.1.0"
