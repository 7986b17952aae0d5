"""Full-text search over people's messages and replies (conversations/services/search.py).

PostgreSQL: a partial GIN expression index on ``to_tsvector('english', payload->>'message')``
of ``user.message`` and ``assistant.final`` events. SQLite: an FTS5 table of the same
text, kept in step by triggers. Note for later migrations: SQLite rebuilds a table on most
ALTERs, which drops its triggers; a migration that alters ``session_events`` must recreate
them (``create_sqlite_fts``).
"""

from django.db import migrations

TYPES = "('user.message', 'assistant.final')"
PG_UP = [
    "CREATE INDEX IF NOT EXISTS session_event_text_fts ON session_events USING gin "
    "(to_tsvector('english'::regconfig, COALESCE(payload->>'message', ''))) "
    f"WHERE type IN {TYPES}",
]
PG_DOWN = ["DROP INDEX IF EXISTS session_event_text_fts"]

SQLITE_UP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS session_events_fts USING fts5(message, tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS session_events_fts_ai AFTER INSERT ON session_events "
    f"WHEN new.type IN {TYPES} BEGIN "
    "INSERT INTO session_events_fts(rowid, message) "
    "VALUES (new.id, COALESCE(json_extract(new.payload, '$.message'), '')); END",
    "CREATE TRIGGER IF NOT EXISTS session_events_fts_ad AFTER DELETE ON session_events BEGIN "
    "DELETE FROM session_events_fts WHERE rowid = old.id; END",
    "DELETE FROM session_events_fts",
    "INSERT INTO session_events_fts(rowid, message) "
    "SELECT id, COALESCE(json_extract(payload, '$.message'), '') FROM session_events "
    f"WHERE type IN {TYPES}",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS session_events_fts_ai",
    "DROP TRIGGER IF EXISTS session_events_fts_ad",
    "DROP TABLE IF EXISTS session_events_fts",
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
    for sql in PG_DOWN if vendor == "postgresql" else SQLITE_DOWN if vendor == "sqlite" else []:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0009_share_links")]
    operations = [migrations.RunPython(forwards, backwards)]
