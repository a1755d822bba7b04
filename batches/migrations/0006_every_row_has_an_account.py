"""Every batch, facility and feedstock type belongs to exactly one Isometric account.

What happens to the rows that had none:
- Batches without an account go into the portal's only account when it has exactly one. With
  none or several, nothing says whose they are, so they go into a new account, "Unassigned
  batches", with no credentials: nothing of it is sent until an admin enters its organisation's
  credentials (or deletes it). Its pushes are paused, as for refused credentials.
- Facilities and feedstock types were one list for all accounts. Each account gets its own copy
  of every one (the first account keeps the originals), and each batch points at its account's
  copy: no account loses a choice it had, and admins delete the copies an organisation does not
  use.
"""

from django.db import migrations, models
import django.core.validators
import django.db.models.deletion
from decimal import Decimal

UNASSIGNED = "Unassigned batches"
UNASSIGNED_MESSAGE = (
    "Holds the batches recorded before the portal had an account. Enter this organisation's "
    "credentials to send them."
)


def give_every_row_an_account(apps, schema_editor):
    """Every batch an account, every facility and feedstock type the first account, and every
    batch its facility by primary key (the old key, the Isometric id, is about to go)."""
    Account = apps.get_model("portal", "IsometricAccount")
    Batch = apps.get_model("batches", "ProductionBatch")
    Facility = apps.get_model("batches", "Facility")
    FeedstockType = apps.get_model("batches", "FeedstockType")

    accounts = list(Account.objects.order_by("pk"))
    orphans = Batch.objects.filter(account=None)
    rows = Facility.objects.exists() or FeedstockType.objects.exists()
    if len(accounts) == 1:
        orphans.update(account=accounts[0])
    elif orphans.exists() or (not accounts and rows):
        name = UNASSIGNED
        while Account.objects.filter(name=name).exists():
            name += " (from before accounts)"
        holding = Account.objects.create(
            name=name,
            environment="sandbox",
            encrypted_client_secret="",
            encrypted_access_token="",
            connection_status="rejected",
            connection_message=UNASSIGNED_MESSAGE,
        )
        orphans.update(account=holding)
    first = Account.objects.order_by("pk").first()
    if first is None:
        return
    Facility.objects.update(account=first)
    FeedstockType.objects.update(account=first)
    for facility in Facility.objects.all():
        Batch.objects.filter(facility=facility).update(owned_facility=facility.pk)


def copy_facilities_and_feedstock_types(apps, schema_editor):
    """Each other account gets its own copy of every facility and feedstock type, and its
    batches point at its copies."""
    Account = apps.get_model("portal", "IsometricAccount")
    Batch = apps.get_model("batches", "ProductionBatch")
    Facility = apps.get_model("batches", "Facility")
    FeedstockType = apps.get_model("batches", "FeedstockType")
    FeedstockLink = Batch.feedstock_types.through

    facilities = list(Facility.objects.all())
    feedstock_types = list(FeedstockType.objects.all())
    for account in Account.objects.order_by("pk")[1:]:
        for facility in facilities:
            copy = Facility.objects.create(
                account=account, isometric_id=facility.isometric_id, name=facility.name
            )
            Batch.objects.filter(owned_facility=facility.pk, account=account).update(
                owned_facility=copy.pk
            )
        for feedstock_type in feedstock_types:
            copy = FeedstockType.objects.create(
                account=account, isometric_id=feedstock_type.isometric_id, name=feedstock_type.name
            )
            FeedstockLink.objects.filter(
                productionbatch__account=account, feedstocktype=feedstock_type
            ).update(feedstocktype=copy)


class Migration(migrations.Migration):
    # PostgreSQL cannot alter a table with foreign key checks pending from the data steps in the
    # same transaction: each step commits on its own.
    atomic = False

    dependencies = [
        ("batches", "0005_remote_id_in_account"),
        ("portal", "0002_pull_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="facility",
            name="account",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="facilities",
                to="portal.isometricaccount",
            ),
        ),
        migrations.AddField(
            model_name="feedstocktype",
            name="account",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="feedstock_types",
                to="portal.isometricaccount",
            ),
        ),
        migrations.AddField(
            model_name="productionbatch",
            name="owned_facility",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="batches.facility",
            ),
        ),
        migrations.AddField(
            model_name="productionbatch",
            name="failing_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(give_every_row_an_account, migrations.RunPython.noop, atomic=True),
        migrations.RemoveIndex(model_name="productionbatch", name="batch_facility_idx"),
        migrations.RemoveIndex(model_name="productionbatch", name="batch_account_remote_idx"),
        migrations.RemoveConstraint(
            model_name="productionbatch", name="batch_reference_unique_unassigned"
        ),
        migrations.RemoveField(model_name="productionbatch", name="facility"),
        migrations.AlterField(
            model_name="facility",
            name="isometric_id",
            field=models.CharField(
                max_length=37,
                validators=[django.core.validators.MinLengthValidator(20)],
                verbose_name="Isometric facility id",
            ),
        ),
        migrations.AlterField(
            model_name="feedstocktype",
            name="isometric_id",
            field=models.CharField(
                max_length=37,
                validators=[django.core.validators.MinLengthValidator(20)],
                verbose_name="Isometric feedstock type id",
            ),
        ),
        migrations.RunPython(
            copy_facilities_and_feedstock_types, migrations.RunPython.noop, atomic=True
        ),
        migrations.RenameField(
            model_name="productionbatch", old_name="owned_facility", new_name="facility"
        ),
        migrations.AlterField(
            model_name="productionbatch",
            name="facility",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="batches",
                to="batches.facility",
            ),
        ),
        migrations.AlterField(
            model_name="productionbatch",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="batches",
                to="portal.isometricaccount",
            ),
        ),
        migrations.AlterField(
            model_name="facility",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="facilities",
                to="portal.isometricaccount",
            ),
        ),
        migrations.AlterField(
            model_name="feedstocktype",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="feedstock_types",
                to="portal.isometricaccount",
            ),
        ),
        migrations.AlterField(
            model_name="productionbatch",
            name="remote_id",
            field=models.CharField(
                blank=True,
                editable=False,
                max_length=37,
                null=True,
                validators=[django.core.validators.MinLengthValidator(20)],
            ),
        ),
        migrations.AlterField(
            model_name="productionbatch",
            name="mass_magnitude",
            field=models.DecimalField(
                decimal_places=6,
                max_digits=18,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.000001")),
                    django.core.validators.MaxValueValidator(Decimal("999999999.999999")),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="productionbatch",
            name="mass_standard_deviation",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                max_digits=18,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0")),
                    django.core.validators.MaxValueValidator(Decimal("999999999.999999")),
                ],
            ),
        ),
        migrations.AddConstraint(
            model_name="facility",
            constraint=models.UniqueConstraint(
                fields=("account", "isometric_id"), name="facility_unique_in_account"
            ),
        ),
        migrations.AddConstraint(
            model_name="feedstocktype",
            constraint=models.UniqueConstraint(
                fields=("account", "isometric_id"), name="feedstock_type_unique_in_account"
            ),
        ),
        migrations.AddConstraint(
            model_name="productionbatch",
            constraint=models.UniqueConstraint(
                fields=("account", "remote_id"), name="batch_remote_id_unique_in_account"
            ),
        ),
        migrations.AddIndex(
            model_name="productionbatch",
            index=models.Index(
                fields=["facility", "-started_at", "-id"], name="batch_facility_idx"
            ),
        ),
    ]
