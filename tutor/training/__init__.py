"""Distil, train and register student models (never imported by the web worker's turn path)."""
