"""Moved to app/uow/routing.py; importable from here until every importer names its new home."""

from app.uow.routing import ApiRoute, Shaped, group_commit

__all__ = ["ApiRoute", "Shaped", "group_commit"]
