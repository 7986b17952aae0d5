/* SomaView: turns timeline items into DOM. Text goes in as text nodes; replies through SomaMarkdown. */
(function (root) {
  "use strict";

  var doc = root.document;

  function h(tag, attrs, children) {
    var e = doc.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "className") e.className = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c) e.appendChild(typeof c === "string" ? doc.createTextNode(c) : c);
    });
    return e;
  }

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / (1024 * 1024)).toFixed(1) + " MB";
  }

  function attachmentChip(a) {
    var link = h("a", { href: "/v1/attachments/" + encodeURIComponent(a.id) + "/content", text: a.filename });
    return h("li", { className: "chip" }, [link, h("span", { className: "muted", text: " " + formatBytes(a.size || 0) })]);
  }

  /* `‹ 2/3 ›`: which of its siblings this message or reply is, with buttons to the others.
   * choice: {index, count, prev, next} (branches.js); onSwitch(eventId) shows that branch. */
  function branchSwitch(choice, what, onSwitch) {
    if (!choice || !onSwitch) return null;
    function step(target, symbol, label) {
      var b = h("button", { type: "button", className: "step", "aria-label": label, title: label, text: symbol });
      if (target) {
        b.addEventListener("click", function () {
          onSwitch(target);
        });
      } else b.disabled = true;
      return b;
    }
    return h("span", { className: "branch", role: "group", "aria-label": "Versions of this " + what }, [
      step(choice.prev, "\u2039", "Previous version"),
      h("span", { className: "count", text: choice.index + "/" + choice.count }),
      step(choice.next, "\u203A", "Next version"),
    ]);
  }

  /* An edit of a message in place: its text in a box, sent as a new version (a new branch). */
  function editForm(item, onSave, onCancel) {
    var box = h("textarea", { className: "edit-box", "aria-label": "Edit message", rows: "3" });
    box.value = item.text;
    var save = h("button", { type: "submit", text: "Send" });
    var cancel = h("button", { type: "button", className: "link", text: "Cancel" });
    var form = h("form", { className: "edit" }, [box, h("div", {}, [save, " ", cancel])]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (box.value.trim()) onSave(item, box.value);
    });
    cancel.addEventListener("click", onCancel);
    setTimeout(function () {
      box.focus();
    }, 0);
    return form;
  }

  /* A message of yours; extras: {choice, onSwitch, onEdit(item, text), editing, onEditStart, onEditCancel}. */
  function userNode(item, extras) {
    extras = extras || {};
    var tools = [branchSwitch(extras.choice, "message", extras.onSwitch)];
    if (extras.onEditStart && !extras.editing) {
      var pencil = h("button", { type: "button", className: "edit-start", "aria-label": "Edit", title: "Edit", text: "\u270E" });
      pencil.addEventListener("click", function () {
        extras.onEditStart(item);
      });
      tools.push(pencil);
    }
    var node = h("article", { className: "msg user", "data-event-id": item.eventId, "aria-label": "You" }, [
      h("div", { className: "who" }, ["You"].concat(tools)),
      extras.editing ? editForm(item, extras.onEdit, extras.onEditCancel) : h("div", { className: "body plain", text: item.text }),
    ]);
    if (item.attachments.length) {
      node.appendChild(h("ul", { className: "chips", "aria-label": "Attached files" }, item.attachments.map(attachmentChip)));
    }
    return node;
  }

  var STATE_TEXT = {
    waiting: "Waiting for the reply…",
    streaming: "Writing…",
    cancelled: "Stopped.",
  };

  function rateButton(item, rating, symbol, label, onRate) {
    var button = h("button", {
      type: "button",
      className: "rate",
      "data-rating": rating,
      "aria-label": label,
      title: label,
      "aria-pressed": item.feedback === rating ? "true" : "false",
      text: symbol,
    });
    button.addEventListener("click", function () {
      onRate(item, rating);
    });
    return button;
  }

  /* The tags a reader may add to a rating, by rating (stored as written here). */
  var FEEDBACK_TAGS = {
    up: ["Accurate", "Helpful", "Well written"],
    down: ["Inaccurate", "Not helpful", "Too long", "Ignored instructions", "Unsafe"],
  };

  /* Under the thumbs of a rated reply: the comment and tags given (with Edit), or the form that
   * gives them. item.feedbackNote: {comment, tags} stored; item.feedbackDraft: the open form's
   * content (kept across re-renders), null while closed. fb: {onOpen, onSave, onCancel}(item, ...). */
  function feedbackDetails(item, fb) {
    if (!item.feedback || !fb) return null;
    var note = item.feedbackNote || { comment: "", tags: [] };
    var draft = item.feedbackDraft;
    if (!draft) {
      var given = [];
      if (note.tags.length) given.push(h("span", { className: "tags", text: note.tags.join(" · ") }));
      if (note.comment) given.push(h("q", { className: "comment", text: note.comment }));
      var edit = h("button", {
        type: "button",
        className: "link",
        text: given.length ? "Edit comment" : "Add a comment",
      });
      edit.addEventListener("click", function () {
        fb.onOpen(item);
      });
      given.push(edit);
      return h("div", { className: "feedback-note" }, given);
    }
    var tags = (FEEDBACK_TAGS[item.feedback] || []).map(function (tag) {
      var on = draft.tags.indexOf(tag) >= 0;
      var b = h("button", { type: "button", className: "tag", "aria-pressed": on ? "true" : "false", text: tag });
      b.addEventListener("click", function () {
        var at = draft.tags.indexOf(tag);
        if (at >= 0) draft.tags.splice(at, 1);
        else draft.tags.push(tag);
        b.setAttribute("aria-pressed", at >= 0 ? "false" : "true");
      });
      return b;
    });
    var text = h("textarea", { rows: "2", maxlength: "2000", "aria-label": "Comment on this reply",
      placeholder: "What was good or wrong? (optional)" });
    text.value = draft.comment;
    text.addEventListener("input", function () {
      draft.comment = text.value;
    });
    var cancel = h("button", { type: "button", className: "link", text: "Cancel" });
    cancel.addEventListener("click", function () {
      fb.onCancel(item);
    });
    var form = h("form", { className: "feedback-form", "aria-label": "Your feedback on this reply" }, [
      h("div", { className: "tags", role: "group", "aria-label": "Tags" }, tags),
      text,
      h("div", {}, [h("button", { type: "submit", text: "Save feedback" }), " ", cancel]),
    ]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      fb.onSave(item, draft.comment.trim(), draft.tags.slice());
    });
    return form;
  }

  var APPROVAL_TEXT = {
    approved: "approved",
    denied: "denied",
    expired: "not answered in time: denied",
    cancelled: "the reply was stopped",
  };

  /* A tool call that waits for the reader: what it would run, and Approve / Deny / Always allow. */
  function approvalCard(reply, approval, onApprove) {
    var args = JSON.stringify(approval.args, null, 2);
    var title = approval.tool + " wants to run";
    if (approval.state !== "pending") {
      return h("div", { className: "approval decided", "data-call-id": approval.callId, "data-state": approval.state }, [
        h("span", { text: approval.tool + ": " + (APPROVAL_TEXT[approval.state] || approval.state) }),
        approval.decidedBy ? h("span", { className: "muted", text: " (" + approval.decidedBy + ")" }) : null,
      ]);
    }
    function button(label, decision, always, cls) {
      var b = h("button", { type: "button", className: cls, text: label });
      b.addEventListener("click", function () {
        onApprove(reply, approval, decision, always);
      });
      return b;
    }
    return h(
      "div",
      { className: "approval", role: "group", "aria-label": "Approve " + approval.tool + "?", "data-call-id": approval.callId, "data-state": "pending" },
      [
        h("strong", { text: title }),
        approval.reason && approval.reason !== "tool_needs_approval" ? h("div", { className: "muted", text: approval.reason }) : null,
        h("pre", { className: "args", text: args }),
        h("div", { className: "actions" }, [
          button("Approve", "approve", false, "approve"),
          button("Deny", "deny", false, "deny"),
          button("Always allow in this chat", "approve", true, "always link"),
        ]),
      ]
    );
  }

  /* Where a citation opens: the document's file (shown by the browser, sandboxed), at the page of a PDF
   * (#page=N, which the PDF viewers of Chromium and Firefox honour; other types ignore it). */
  function citationHref(c) {
    if (!c.collectionId || !c.documentId) return null;
    var href =
      "/v1/collections/" + encodeURIComponent(c.collectionId) + "/documents/" + encodeURIComponent(c.documentId) + "/file";
    return c.page ? href + "#page=" + encodeURIComponent(String(c.page)) : href;
  }

  /* The documents a reply was given, numbered as the model cites them: [1] file, page — excerpt;
   * the file and page link to the document, opened in a new tab. */
  function citationList(citations) {
    return h(
      "ol",
      { className: "citations", "aria-label": "Sources" },
      citations.map(function (c) {
        var where = c.filename + (c.page ? ", page " + c.page : "");
        var href = citationHref(c);
        var place = href
          ? h("a", { className: "cite-where", href: href, target: "_blank", rel: "noopener noreferrer", text: where })
          : h("span", { className: "cite-where", text: where });
        return h("li", { "data-index": String(c.index), "data-document-id": c.documentId, title: c.snippet }, [
          h("span", { className: "cite-n", text: "[" + c.index + "] " }),
          place,
          c.snippet ? h("span", { className: "muted", text: " \u2014 " + c.snippet }) : null,
        ]);
      })
    );
  }

  /* Build or refresh a reply's node; onRetry(reply) is called by its Retry button, and
   * onRate(reply, "up"|"down") by its feedback buttons (a finished reply only); extras:
   * {choice, onSwitch, onRegenerate(reply)} for its versions and another one, and
   * onApprove(reply, approval, "approve"|"deny", always) for its approval cards, and feedback:
   * {onOpen, onSave, onCancel} for the comment and tags of a rating (feedbackDetails). */
  function replyNode(item, existing, onRetry, onRate, extras) {
    extras = extras || {};
    var node = existing || h("article", { className: "msg assistant", "aria-label": "SomaAgent" });
    node.setAttribute("data-state", item.state);
    node.setAttribute("aria-busy", item.state === "waiting" || item.state === "streaming" ? "true" : "false");
    if (item.replyTo) node.setAttribute("data-reply-to", item.replyTo);
    var ended = item.state === "done" || item.state === "error" || item.state === "cancelled";
    var again = null;
    if (ended && extras.onRegenerate && item.replyTo) {
      again = h("button", { type: "button", className: "regenerate", "aria-label": "Regenerate", title: "Another reply", text: "\u21BB" });
      again.addEventListener("click", function () {
        extras.onRegenerate(item);
      });
    }
    var head = h("div", { className: "who" }, [
      "SomaAgent",
      item.model ? h("span", { className: "model", title: "Model that answered", text: item.model }) : null,
      branchSwitch(extras.choice, "reply", extras.onSwitch),
      again,
    ]);
    var body = h("div", { className: "body markdown" });
    body.appendChild(root.SomaMarkdown.render(item.text, doc));
    var parts = [head];
    if (item.tools.length) {
      parts.push(
        h(
          "ul",
          { className: "tools", "aria-label": "Tools used" },
          item.tools.map(function (t) {
            var label = t.type === "tool.start" ? "Running " + t.name : t.name + ": " + (t.status || "done");
            return h("li", { text: label });
          })
        )
      );
    }
    if (item.approvals && item.approvals.length && extras.onApprove) {
      item.approvals.forEach(function (a) {
        parts.push(approvalCard(item, a, extras.onApprove));
      });
    }
    parts.push(body);
    if (item.state === "done" && item.citations && item.citations.length) {
      parts.push(citationList(item.citations));
    }
    if (item.state === "error") {
      var retry = h("button", { type: "button", className: "retry", text: "Retry" });
      retry.addEventListener("click", function () {
        onRetry(item);
      });
      parts.push(
        h("div", { className: "error", role: "alert" }, [
          h("strong", { text: "The reply failed: " }),
          item.error.message,
          h("span", { className: "muted", text: " (" + item.error.code + ")" }),
          " ",
          retry,
        ])
      );
    } else if (STATE_TEXT[item.state]) {
      parts.push(h("div", { className: "state muted", text: STATE_TEXT[item.state] }));
    } else if (item.state === "done" && item.finalEventId && onRate) {
      parts.push(
        h("div", { className: "feedback", role: "group", "aria-label": "Rate this reply" }, [
          rateButton(item, "up", "\uD83D\uDC4D", "Good reply", onRate),
          rateButton(item, "down", "\uD83D\uDC4E", "Bad reply", onRate),
        ])
      );
      parts.push(feedbackDetails(item, extras.feedback));
    }
    node.replaceChildren.apply(node, parts);
    return node;
  }

  function sessionItem(session, active, onOpen) {
    var title = session.title || "Untitled chat";
    var button = h("a", {
      href: "/c/" + session.session_id + "/",
      className: "session" + (active ? " active" : ""),
      "aria-current": active ? "page" : null,
      "data-session-id": session.session_id,
      text: title,
    });
    button.addEventListener("click", function (ev) {
      if (ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      onOpen(session.session_id);
    });
    return h("li", {}, [button]);
  }

  /* One search result: the chat's title and the snippet, its matches marked as text (<mark>);
   * it opens the chat at the message found (onOpen(sessionId, eventId)). */
  function searchHit(hit, onOpen) {
    var snippet = h("span", { className: "snippet" });
    var at = 0;
    hit.highlights.forEach(function (span) {
      if (span[0] > at) snippet.appendChild(doc.createTextNode(hit.snippet.slice(at, span[0])));
      snippet.appendChild(h("mark", { text: hit.snippet.slice(span[0], span[1]) }));
      at = span[1];
    });
    if (at < hit.snippet.length) snippet.appendChild(doc.createTextNode(hit.snippet.slice(at)));
    var href = "/c/" + hit.session_id + "/#event-" + hit.event_id;
    var link = h("a", { href: href, className: "hit", "data-session-id": hit.session_id }, [
      h("strong", { text: hit.session_title || "Untitled chat" }),
      snippet,
    ]);
    link.addEventListener("click", function (ev) {
      if (ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      onOpen(hit.session_id, hit.event_id);
    });
    return h("li", {}, [link]);
  }

  function uploadChip(upload, onRemove) {
    var status = {
      uploading: "uploading…",
      ready: formatBytes(upload.size || 0),
      quarantined: "quarantined — will not be sent",
      failed: upload.error || "failed",
    }[upload.state];
    var remove = h("button", { type: "button", className: "link", "aria-label": "Remove " + upload.name, text: "×" });
    remove.addEventListener("click", function () {
      onRemove(upload);
    });
    return h("li", { className: "chip " + upload.state, "data-state": upload.state }, [
      h("span", { text: upload.name }),
      h("span", { className: "muted", text: " " + status + " " }),
      remove,
    ]);
  }

  root.SomaView = {
    h: h,
    userNode: userNode,
    replyNode: replyNode,
    sessionItem: sessionItem,
    searchHit: searchHit,
    uploadChip: uploadChip,
    formatBytes: formatBytes,
  };
})(window);
