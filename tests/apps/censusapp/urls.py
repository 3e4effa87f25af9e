"""censusapp's URLs."""
from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("books/", views.book_list),
    path("page/", views.book_page),
    path("search/", views.search),
    path("book/<int:pk>/", views.book_detail),
]
