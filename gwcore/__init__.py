"""Shared domain code that every process room may import: constants, errors, logging.

It owns no process and opens no socket; importing it has no side effects.
"""
