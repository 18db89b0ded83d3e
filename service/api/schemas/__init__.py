"""Pydantic schemas of the HTTP API, one module per family."""
