"""cowapp's routes: the same four paths as cowlab's embedded workload, and
/healthz (the worker's pid, for the runner's readiness probe)."""
from django.urls import path

from cowapp import views

urlpatterns = [
    path("", views.page),
    path("api/items", views.items),
    path("api/user", views.user),
    path("static", views.static),
    path("healthz", views.healthz),
]
