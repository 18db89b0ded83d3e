"""Peer servers measured against the service; each runs in a virtual environment of its own."""
