"""Helpers shared by test modules: record factories, seeding, commands.

Test modules import from here (or from ``tests/conftest.py``), never from one another.
"""
