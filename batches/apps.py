from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Production batches"

    def ready(self) -> None:
        from batches.adoption import adopt_unassigned_batches
        from batches.roles import ensure_operators_group
        from batches.search import ensure_search_index
        from portal.models import IsometricAccount

        post_migrate.connect(ensure_operators_group, sender=self)
        post_migrate.connect(ensure_search_index, sender=self)
        post_save.connect(adopt_unassigned_batches, sender=IsometricAccount)
