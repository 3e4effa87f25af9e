"""cowapp -- the small Django app `scripts/experiment --server gunicorn|uwsgi`
serves: a heap of a realistic size built at import (a product catalog,
user profiles, translations, ORM rows in an in-memory SQLite database, a
compiled template), and views that read it the way requests do (wsgi.py
builds it; views.py serves it)."""
