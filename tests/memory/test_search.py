"""The embedded store: relevance-ranked recall (FTS on PostgreSQL, FTS5 on SQLite), isolation, forget.

The suite runs on both databases (``make test`` with DATABASE_URL, ``make test-embedded``).
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from memory.adapters.embedded import EmbeddedMemory
from memory.models import MemoryItem
from memory.port import Forget, RecallQuery, Remember
from memory.search import query_terms
from tests.memory.helpers import make_tenant

pytestmark = pytest.mark.django_db

DEFAULT_NS = "persona:default"


def remember(store, tenant, text, *, namespace=DEFAULT_NS, session_id=None):
    key = f"k-{uuid.uuid4().hex}"
    store.remember(
        Remember(
            tenant=str(tenant.pk),
            namespace=namespace,
            key=key,
            value={"text": text, "session_id": str(session_id or uuid.uuid4()), "role": "user"},
        )
    )
    return key


def recall(store, tenant, query, *, namespace=DEFAULT_NS, top_k=5):
    hits = store.recall(
        RecallQuery(tenant=str(tenant.pk), namespace=namespace, query=query, top_k=top_k, timeout=5)
    )
    return [h.text for h in hits], [h.score for h in hits]


@pytest.fixture
def store() -> EmbeddedMemory:
    return EmbeddedMemory()


def test_more_shared_terms_rank_higher_and_unrelated_texts_are_left_out(store):
    tenant = make_tenant()
    remember(store, tenant, "The sky was a deep colour at dusk.")
    remember(store, tenant, "My favourite colour is teal, I painted the kitchen teal.")
    remember(store, tenant, "We had pasta with mushrooms for dinner.")
    texts, scores = recall(store, tenant, "What is my favourite colour?")
    assert texts == [
        "My favourite colour is teal, I painted the kitchen teal.",
        "The sky was a deep colour at dusk.",
    ]
    assert scores[0] > scores[1] > 0


def test_term_frequency_raises_the_rank(store):
    tenant = make_tenant()
    remember(store, tenant, "A note about gardening, weather and a walk along the river in spring.")
    remember(store, tenant, "Gardening, gardening, gardening: tomatoes need gardening care.")
    texts, _ = recall(store, tenant, "gardening")
    assert texts[0].startswith("Gardening, gardening")


def test_words_match_across_inflections(store):
    tenant = make_tenant()
    remember(store, tenant, "I was painting the fences all weekend.")
    texts, _ = recall(store, tenant, "paints fence")
    assert texts == ["I was painting the fences all weekend."]


def test_top_k_bounds_the_results(store):
    tenant = make_tenant()
    for i in range(8):
        remember(store, tenant, f"bicycle note number {i}")
    texts, _ = recall(store, tenant, "bicycle", top_k=3)
    assert len(texts) == 3


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "the and of is",
        '"; DROP TABLE memory_items; --',
        "NEAR(a b) * ^ - : ( ) OR AND NOT",
        "!!! ???",
    ],
)
def test_odd_queries_find_nothing_and_raise_nothing(store, query):
    tenant = make_tenant()
    remember(store, tenant, "the and of is a table near a drop")
    texts, _ = recall(store, tenant, query)
    assert isinstance(texts, list)
    assert MemoryItem.objects.filter(tenant=tenant).count() == 1


def test_recall_is_isolated_by_tenant_and_persona(store):
    mine, other = make_tenant(), make_tenant()
    remember(store, mine, "The launch code word is marzipan.", namespace="persona:alpha")
    remember(store, other, "Their code word is marzipan too.", namespace="persona:alpha")
    remember(store, mine, "Another persona knows marzipan.", namespace="persona:beta")
    assert recall(store, mine, "marzipan", namespace="persona:alpha")[0] == [
        "The launch code word is marzipan."
    ]
    assert recall(store, other, "marzipan", namespace="persona:alpha")[0] == [
        "Their code word is marzipan too."
    ]
    assert recall(store, mine, "marzipan", namespace="persona:beta")[0] == ["Another persona knows marzipan."]
    assert recall(store, mine, "marzipan", namespace="persona:gamma")[0] == []


def test_the_same_key_is_stored_once(store):
    tenant = make_tenant()
    item = Remember(
        tenant=str(tenant.pk), namespace=DEFAULT_NS, key="dup-key-" + uuid.uuid4().hex, value={"text": "x"}
    )
    store.remember(item)
    store.remember(item)
    assert MemoryItem.objects.filter(key=item.key).count() == 1


def test_forget_removes_a_session_from_recall(store):
    tenant = make_tenant()
    gone, kept = uuid.uuid4(), uuid.uuid4()
    remember(store, tenant, "The password hint is walrus.", session_id=gone)
    remember(store, tenant, "Walrus facts: they have tusks.", session_id=kept)
    assert (
        store.forget(Forget(tenant=str(tenant.pk), namespace=DEFAULT_NS, session_id=str(gone), key="f")) == 1
    )
    assert recall(store, tenant, "walrus")[0] == ["Walrus facts: they have tusks."]


def test_query_terms_drop_stop_words_and_punctuation():
    assert query_terms("What is MY favourite colour?!") == ["favourite", "colour"]
    assert query_terms("snake_case and don't") == ["snake", "case", "don"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 24


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index exists on PostgreSQL only")
def test_postgres_match_is_served_by_the_gin_index(store):
    """The planner may prefer the tenant index on a tiny table; the match itself must be indexable."""
    tenant = make_tenant()
    remember(store, tenant, "teal walls")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM memory_items WHERE search_vector @@ to_tsquery('english', %s)",
            ["teal | walls"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "memitem_text_fts" in plan, plan


@pytest.mark.skipif(connection.vendor != "sqlite", reason="FTS5 is the SQLite path")
def test_sqlite_fts_table_follows_inserts_updates_and_deletes(store):
    tenant = make_tenant()
    key = remember(store, tenant, "original wording about otters")

    def keys(query):
        q = RecallQuery(tenant=str(tenant.pk), namespace=DEFAULT_NS, query=query, top_k=5, timeout=5)
        return [h.key for h in store.recall(q)]

    assert keys("otters") == [key]
    MemoryItem.objects.filter(key=key).update(text="rewritten wording about beavers")
    assert keys("otters") == []
    assert keys("beavers") == [key]
    MemoryItem.objects.filter(key=key).delete()
    assert keys("beavers") == []
