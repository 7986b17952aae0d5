"""Full-text search for document chunks, per database (see documents/search.py).

PostgreSQL: a stored generated column ``search_vector`` over heading and text
with a GIN index, stored in the row (``STORAGE MAIN``); the model does not
declare it (SQLite has no tsvector).
SQLite: an FTS5 table over ``document_chunks`` (external content) kept in step
by triggers. As for memory_items: a later migration that alters
``document_chunks`` on SQLite must recreate the triggers.
"""

from django.db import migrations

PG_UP = [
    "ALTER TABLE document_chunks ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english'::regconfig, COALESCE(heading, '') || ' ' || COALESCE(text, ''))) STORED",
    "CREATE INDEX docchunk_text_fts ON document_chunks USING gin (search_vector)",
    # Kept in the row (compressed) rather than in TOAST: ranking reads the vector of every
    # match, and a TOAST fetch per match made a common word 6x slower at 10,000 chunks (bench/).
    "ALTER TABLE document_chunks ALTER COLUMN search_vector SET STORAGE MAIN",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS docchunk_text_fts",
    "ALTER TABLE document_chunks DROP COLUMN IF EXISTS search_vector",
]
SQLITE_UP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS document_chunks_fts USING fts5("
    "heading, text, content='document_chunks', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS document_chunks_fts_ai AFTER INSERT ON document_chunks BEGIN "
    "INSERT INTO document_chunks_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS document_chunks_fts_ad AFTER DELETE ON document_chunks BEGIN "
    "INSERT INTO document_chunks_fts(document_chunks_fts, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS document_chunks_fts_au AFTER UPDATE ON document_chunks BEGIN "
    "INSERT INTO document_chunks_fts(document_chunks_fts, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); "
    "INSERT INTO document_chunks_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    "INSERT INTO document_chunks_fts(document_chunks_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS document_chunks_fts_ai",
    "DROP TRIGGER IF EXISTS document_chunks_fts_ad",
    "DROP TRIGGER IF EXISTS document_chunks_fts_au",
    "DROP TABLE IF EXISTS document_chunks_fts",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in PG_UP if vendor == "postgresql" else SQLITE_UP if vendor == "sqlite" else []:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in PG_DOWN if vendor == "postgresql" else SQLITE_DOWN if vendor == "sqlite" else []:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("documents", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
