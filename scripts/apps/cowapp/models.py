"""cowapp's ORM models: a category has items, an item has reviews."""
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=64)
    slug = models.SlugField(max_length=64)

    class Meta:
        app_label = "cowapp"


class Item(models.Model):
    category = models.ForeignKey(Category, on_delete=models.CASCADE,
                                 related_name="items")
    sku = models.CharField(max_length=32, db_index=True)
    name = models.CharField(max_length=128)
    price = models.DecimalField(max_digits=9, decimal_places=2)
    stock = models.IntegerField(default=0)

    class Meta:
        app_label = "cowapp"


class Review(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE,
                             related_name="reviews")
    stars = models.SmallIntegerField()
    text = models.TextField()

    class Meta:
        app_label = "cowapp"
