import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models

import batches.folding
import batches.search


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0005_dashboard_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="productionbatch",
            index=models.Index(
                fields=["mass_magnitude", "started_at", "id"], name="batch_mass_idx"
            ),
        ),
        # A generated column cannot be altered: the folded one replaces the lowered one, and
        # the search index is built anew after the migration (search.ensure_search_index),
        # either way.
        migrations.RunPython(batches.search.drop_search_index, batches.search.drop_search_index),
        migrations.RemoveField(model_name="productionbatch", name="search_text"),
        migrations.AddField(
            model_name="productionbatch",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                expression=batches.folding.Folded(
                    django.db.models.functions.text.Concat(
                        "display_name",
                        models.Value(" "),
                        "supplier_reference_id",
                        models.Value(" "),
                        django.db.models.functions.comparison.Coalesce(
                            "remote_id", models.Value("")
                        ),
                        output_field=models.TextField(),
                    )
                ),
                output_field=models.TextField(),
            ),
        ),
        migrations.RunPython(batches.search.drop_search_index, batches.search.drop_search_index),
        migrations.AddIndex(
            model_name="productionbatch",
            index=models.Index(
                models.F("account"),
                batches.folding.Folded("supplier_reference_id"),
                name="batch_reference_folded_idx",
            ),
        ),
    ]
