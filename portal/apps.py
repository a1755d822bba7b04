from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import (
            checks,  # noqa: F401  (registers the system checks)
            history,
        )
        from portal.roles import ensure_credential_admins_group

        post_migrate.connect(ensure_credential_admins_group, sender=self)
        history.register()


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin on the portal's own site (portal.admin_site)."""

    default = False  # the portal app's own config is PortalConfig
    default_site = "portal.admin_site.PortalAdminSite"
