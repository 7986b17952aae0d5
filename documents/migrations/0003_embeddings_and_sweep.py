"""Embeddings (a vector per chunk, the document's embedding status, reason and model) and the
index the stuck-document sweep reads. ``embedding`` is a nullable column without default, so
SQLite adds it in place (ALTER TABLE ADD COLUMN): document_chunks is not rebuilt and the FTS
triggers of 0002 stay as they are."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0002_search_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="embedding",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="document",
            name="embedding_model",
            field=models.CharField(blank=True, default="", help_text="Made its vectors.", max_length=200),
        ),
        migrations.AddField(
            model_name="document",
            name="embedding_reason",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Why embedding failed (it is found by full text).",
                max_length=500,
            ),
        ),
        migrations.AddField(
            model_name="document",
            name="embedding_status",
            field=models.CharField(
                choices=[("off", "Off"), ("ready", "Ready"), ("failed", "Failed")],
                default="off",
                help_text="Vectors of its chunks.",
                max_length=8,
            ),
        ),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(fields=["status", "updated_at"], name="document_status_updated"),
        ),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.CheckConstraint(
                condition=models.Q(("embedding_status__in", ["off", "ready", "failed"])),
                name="document_embedding_status_valid",
            ),
        ),
    ]
