"""Pedagogy and content as pure Python: no torch, no gradio imports here."""
