"""Django settings of cowapp (scripts/apps/cowapp/__init__.py)."""
import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "cowlab-experiment-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "cowapp",
]
MIDDLEWARE = [
    "cowapp.views.CountRequests",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "cowapp.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [os.path.join(BASE_DIR, "templates")],
    "APP_DIRS": False,
    "OPTIONS": {"context_processors": []},
}]
# One in-memory database per process: built at import, so a preloaded
# master's rows are inherited copy-on-write like the rest of the heap.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": ":memory:"}}
USE_TZ = True
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
