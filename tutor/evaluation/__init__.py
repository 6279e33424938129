"""Measuring pedagogy: replay human dialogues, judge turns, print one table."""
