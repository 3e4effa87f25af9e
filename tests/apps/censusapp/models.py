"""censusapp's models: authors, books and tags."""
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)


class Tag(models.Model):
    label = models.SlugField(unique=True)


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE,
                               related_name="books")
    tags = models.ManyToManyField(Tag, blank=True)
    pages = models.IntegerField(default=100)
    published = models.DateField(null=True)
