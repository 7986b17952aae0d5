"""Full-text search for the embedded memory store, per database (see memory/search.py).

PostgreSQL: a stored generated column ``search_vector`` =
``to_tsvector('english', text)`` with a GIN index; the model does not declare
it (SQLite has no tsvector), the search queries it with SQL.
SQLite: an FTS5 table over ``memory_items.text`` (external content) kept in
step by triggers. Note for later migrations: SQLite rebuilds a table on most
ALTERs, which drops its triggers; a migration that alters ``memory_items``
must recreate them (call ``create_sqlite_fts`` again).
"""

from django.db import migrations

PG_UP = [
    "ALTER TABLE memory_items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english'::regconfig, COALESCE(text, ''))) STORED",
    "CREATE INDEX memitem_text_fts ON memory_items USING gin (search_vector)",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS memitem_text_fts",
    "ALTER TABLE memory_items DROP COLUMN IF EXISTS search_vector",
]

SQLITE_UP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS memory_items_fts USING fts5("
    "text, content='memory_items', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS memory_items_fts_ai AFTER INSERT ON memory_items BEGIN "
    "INSERT INTO memory_items_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS memory_items_fts_ad AFTER DELETE ON memory_items BEGIN "
    "INSERT INTO memory_items_fts(memory_items_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS memory_items_fts_au AFTER UPDATE ON memory_items BEGIN "
    "INSERT INTO memory_items_fts(memory_items_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO memory_items_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO memory_items_fts(memory_items_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS memory_items_fts_ai",
    "DROP TRIGGER IF EXISTS memory_items_fts_ad",
    "DROP TRIGGER IF EXISTS memory_items_fts_au",
    "DROP TABLE IF EXISTS memory_items_fts",
]


def create_sqlite_fts(schema_editor):
    for sql in SQLITE_UP:
        schema_editor.execute(sql)


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for sql in PG_UP:
            schema_editor.execute(sql)
    elif vendor == "sqlite":
        create_sqlite_fts(schema_editor)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for sql in PG_DOWN:
            schema_editor.execute(sql)
    elif vendor == "sqlite":
        for sql in SQLITE_DOWN:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("memory", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
