"""censusapp -- a small Django project for the heap census and make
validate-app: contrib apps (admin, auth, contenttypes, sessions, messages,
staticfiles), three models on an in-memory SQLite database and a few views,
driven through Django's test client (no network).  driver.py is what the
census imports: setup() and the request mixes."""
