"""censusapp's views: a JSON list, a template page, a form, a detail."""
from django import forms
from django.http import Http404, JsonResponse
from django.shortcuts import render

from .models import Book


class SearchForm(forms.Form):
    q = forms.CharField(max_length=50)
    min_pages = forms.IntegerField(required=False, min_value=0)


def book_list(request):
    books = (Book.objects.select_related("author")
             .prefetch_related("tags").order_by("id")[:50])
    return JsonResponse({"books": [
        {"id": b.id, "title": b.title, "author": b.author.name,
         "tags": [t.label for t in b.tags.all()], "pages": b.pages}
        for b in books]})


def book_page(request):
    books = Book.objects.select_related("author").order_by("-pages")[:30]
    return render(request, "books.html", {"books": books})


def search(request):
    form = SearchForm(request.GET or None)
    found = []
    if form.is_valid():
        qs = Book.objects.filter(title__icontains=form.cleaned_data["q"])
        if form.cleaned_data.get("min_pages") is not None:
            qs = qs.filter(pages__gte=form.cleaned_data["min_pages"])
        found = [b.title for b in qs[:20]]
    return JsonResponse({"valid": form.is_valid(), "found": found,
                         "errors": form.errors.get_json_data()})


def book_detail(request, pk):
    try:
        b = Book.objects.select_related("author").get(pk=pk)
    except Book.DoesNotExist:
        raise Http404("no such book")
    return render(request, "detail.html", {"book": b,
                                           "tags": list(b.tags.all())})
