"""The browser side: server-rendered screens (Jinja2 + HTMX), one module per screen.

Every screen route uses `ScreenRoute` (app/web/deps.py): one unit of work per request,
the session cookie checked against the database, CSRF enforced on every state change,
and errors rendered as HTML pages or HTMX fragments instead of JSON.
"""
