"""Deployment: supervisor program templates, gunicorn config, the local world's launcher."""
