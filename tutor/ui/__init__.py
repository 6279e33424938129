"""Gradio pages. Callbacks take and return plain values and call TutorService only."""
