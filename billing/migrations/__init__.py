"""Alembic migrations of Portier's database."""
