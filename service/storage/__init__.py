"""Persistence: SQLAlchemy Core over SQLite (default) or any SQLAlchemy URL (PostgreSQL in a cluster)."""
