from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Production batches"

    def ready(self) -> None:
        from batches import folding, history
        from batches.metrics import PortalState
        from batches.roles import ensure_operators_group
        from batches.search import ensure_search_index
        from portal import metrics

        post_migrate.connect(ensure_operators_group, sender=self)
        post_migrate.connect(ensure_search_index, sender=self)
        connection_created.connect(folding.register_sqlite_function)
        history.register()
        metrics.add_state(PortalState())
