"""Alembic migrations of the demo schema (env.py and versions/), run by readykit.demo.migrate."""
