"""Socratic tutor: a small student model that tutors math instead of answering."""

__version__ = "0.1.0"
