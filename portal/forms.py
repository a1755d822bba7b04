from typing import Any

from django import forms
from django.conf import settings

from portal.models import UserPreferences
from portal.time_zones import zone_choices


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="The portal shows its times in this zone, and reads the times you enter in it.",
    )

    class Meta:
        model = UserPreferences
        fields = ["time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", f"The portal's ({settings.TIME_ZONE})"), *zone_choices()]
