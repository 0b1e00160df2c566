from django.db import migrations


class Migration(migrations.Migration):
    """The lists of ids are rows now (0004)."""

    dependencies = [
        ("evaluation", "0004_eval_set_frames"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="evalset",
            name="asset_ids",
        ),
    ]
