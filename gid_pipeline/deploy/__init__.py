"""Deployment: pipeline folders and the Hugging Face Hub (hub), and the Space (space)."""
