"""docstatus.js in node: what the Collections panel says of a document and a collection, which
documents it still polls, and the files it refuses before sending them."""

from __future__ import annotations

from tests.webchat.jsrun import node_eval

RULES = """
const rules = {maxBytes: 1000, extensions: ["pdf", "docx", "md", "txt"],
               formatBytes: (n) => n + " B"};
"""


def test_status_text_of_each_state():
    docs = [
        {"status": "queued"},
        {"status": "processing", "progress": 0},
        {"status": "processing", "progress": 40},
        {"status": "ready", "pages": 0, "embedding_status": "off"},
        {"status": "ready", "pages": 1, "embedding_status": "ready"},
        {"status": "ready", "pages": 3, "embedding_status": "failed", "embedding_reason": "HTTP 503"},
        {"status": "failed", "reason": "The DOCX expands to 300 MB."},
        {"status": "failed", "reason": ""},
    ]
    said = node_eval("docstatus.js", "return input.map(d => mod.statusText(d));", docs)
    assert said == [
        "queued",
        "processing",
        "processing 40%",
        "ready",
        "ready, 1 page",
        "ready, 3 pages, keywords only",
        "failed: The DOCX expands to 300 MB.",
        "failed: no reason given",
    ]


def test_only_queued_or_processing_documents_keep_the_panel_polling():
    body = "return input.map(docs => mod.anyPending(docs));"
    cases = [
        [],
        [{"status": "ready"}, {"status": "failed"}],
        [{"status": "ready"}, {"status": "queued"}],
        [{"status": "processing"}],
    ]
    assert node_eval("docstatus.js", body, cases) == [False, False, True, True]


def test_files_refused_before_sending_by_type_size_or_emptiness():
    files = [
        {"name": "notes.md", "size": 10},
        {"name": "Guide.PDF", "size": 1000},
        {"name": "photo.png", "size": 10},
        {"name": "README", "size": 10},
        {"name": ".md", "size": 10},
        {"name": "big.txt", "size": 1001},
        {"name": "empty.txt", "size": 0},
    ]
    said = node_eval("docstatus.js", RULES + "return input.map(f => mod.checkFile(f, rules));", files)
    kinds = "upload a PDF, DOCX, Markdown, HTML, plain text or CSV file."
    assert said == [
        "",
        "",
        ".png files are not accepted: " + kinds,
        "Files without an extension are not accepted: " + kinds,
        "Files without an extension are not accepted: " + kinds,
        "The file is 1001 B, over the 1000 B limit.",
        "The file is empty.",
    ]


def test_collections_are_labelled_for_whom_and_chat_files_left_to_their_chat():
    collections = [
        {"name": "Handbook", "kind": "shared", "owner": None},
        {"name": "Mine", "kind": "private", "owner": "ada"},
        {"name": "Bob's", "kind": "private", "owner": "bob"},
        {"name": "This chat's files", "kind": "chat", "owner": "ada"},
    ]
    body = """
    return {
      listed: mod.panelCollections(input).map(c => c.name),
      kinds: input.map(c => mod.kindText(c, "ada")),
      member: input.map(c => mod.mayManage(c, false)),
      admin: input.map(c => mod.mayManage(c, true)),
    };
    """
    got = node_eval("docstatus.js", body, collections)
    assert got["listed"] == ["Handbook", "Mine", "Bob's"]
    assert got["kinds"] == [
        "shared with your tenant",
        "private: yours alone",
        "private to bob",
        "one chat's files",
    ]
    assert got["member"] == [False, True, True, True]
    assert got["admin"] == [True, True, True, True]
