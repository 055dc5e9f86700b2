"""Moebius Studio's engine: everything but the GUI. Never imports Qt.

Importing `engine` is cheap: torch and diffusers load only when a model is used.
"""
