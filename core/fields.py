"""Model fields every app may use."""

from django.db import models


class StampField(models.DateTimeField):
    """A `DateTimeField(auto_now_add=True)` or `(auto_now=True)` that an
    insert leaves alone when the row already has a time: a restore writes the
    exported times in the INSERT itself (`bulk_create`), instead of setting
    "now" and then rewriting every row. Everything else is Django's: a new row
    without a time gets "now", an update of an `auto_now` field too."""

    def pre_save(self, model_instance, add):
        given = getattr(model_instance, self.attname)
        if add and given is not None:
            return given
        return super().pre_save(model_instance, add)
