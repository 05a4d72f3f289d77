"""`readykit backup`: SQLite and PostgreSQL backups that are restored before they are trusted.

A repository is a directory of self-describing backups: one data file (`<id>.rkb`) and one JSON
manifest (`<id>.json`) each. See docs/backup.md.
"""
