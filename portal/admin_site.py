"""The portal's admin site: Django's, with "view on site" scoped as the model's own admin is."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, URLResolver, reverse_lazy


class PortalAdminSite(admin.AdminSite):
    def get_urls(self) -> list[URLResolver | URLPattern]:
        view = self.admin_view(self.view_on_site)
        # As on the admin's other views: LoginRequiredMiddleware sends to the admin's login.
        view.login_url = reverse_lazy("admin:login", current_app=self.name)  # type: ignore[attr-defined]
        return [
            URLPattern(url.pattern, view, name=url.name)
            if isinstance(url, URLPattern) and url.name == "view_on_site"
            else url
            for url in super().get_urls()
        ]

    def view_on_site(
        self, request: HttpRequest, content_type_id: str, object_id: str
    ) -> HttpResponse:
        """An object's page in the portal. Django's own looks up any object of any account:
        this one only those the model's admin shows the user, so another organisation's rows
        are not found, as everywhere else in the admin."""
        try:
            model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
        except (ValueError, ContentType.DoesNotExist):
            raise Http404 from None
        model_admin = self._registry.get(model) if model else None
        if model_admin is None or not model_admin.has_view_permission(request):
            raise Http404
        found = model_admin.get_object(request, unquote(object_id))
        if found is None or not hasattr(found, "get_absolute_url"):
            raise Http404
        return redirect(found.get_absolute_url())
