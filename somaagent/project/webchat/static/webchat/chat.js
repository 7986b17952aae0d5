/* The web chat: sessions from the HTTP API, replies from the WebSocket, folded by SomaTimeline.
 *
 * A session opens with its latest history page, cut after the last finished turn;
 * the WebSocket then streams from that cursor, so a running reply (deltas included)
 * arrives whole. On any disconnect it reconnects from the last applied cursor: no
 * gap, no duplicate. Messages carry an idempotency key and are re-sent after a
 * reconnect until acknowledged, so none is lost or doubled.
 *
 * Branches: the chat shows one branch (the active one, or the one `‹ n/m ›` switched to); live
 * events of other branches are only counted (SomaBranches). An edit sends the new text as a
 * message under the edited one's parent; regenerate asks for another reply to a message. Both
 * then show the new branch; a message sent while another branch than the newest is shown goes on
 * the shown one (parent_event_id).
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("chat-config").textContent);
  var Timeline = window.SomaTimeline;
  var Branches = window.SomaBranches;
  var V = window.SomaView;
  var Http = window.SomaHttp;
  var api = Http.api;
  var errorText = Http.errorText;
  var uuid = Http.uuid;
  Http.loginUrl = cfg.loginUrl;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var PAGE = 50;

  var state = {
    sessionId: null,
    generation: 0, // bumps whenever the open session changes; stale callbacks check it
    timeline: new Timeline(0),
    nodes: new Map(),
    olderCursor: null,
    stream: null,
    renderQueued: new Set(),
    renderScheduled: false,
    feedback: {}, // event_id of a reply -> {rating: "up" | "down", comment, tags}: what you gave in this chat
    branches: new Branches(),
    branch: null, // an event the shown branch goes through (null: the active branch)
    found: null, // the event a search result opened the chat at: shown marked, scrolled to
    olderLoad: null, // the page of older messages being loaded (a promise), if one is
    editing: null, // the user item being edited
  };

  var sidebar = new window.SomaSidebar({
    currentId: function () {
      return state.sessionId;
    },
    onOpen: function (id, eventId) {
      openSession(id, true, eventId || null, eventId || null);
    },
  });
  var uploads = new window.SomaUploads({
    list: $("attachments"),
    maxBytes: cfg.uploads.max_bytes,
    sessionId: function () {
      return state.sessionId;
    },
    onRemove: function () {
      $("composer-input").focus();
    },
  });

  var chatFiles = new window.SomaChatFiles({
    list: $("chat-files"),
    sessionId: function () {
      return state.sessionId;
    },
  });
  $("doc-input").addEventListener("change", function (ev) {
    chatFiles.add(ev.target.files);
    ev.target.value = "";
  });
  $("log").addEventListener("dragover", function (ev) {
    if (state.sessionId && ev.dataTransfer && Array.prototype.indexOf.call(ev.dataTransfer.types, "Files") >= 0) {
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
    }
  });
  $("log").addEventListener("drop", function (ev) {
    if (!state.sessionId || !ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    chatFiles.add(ev.dataTransfer.files);
  });

  /* ---------- status, scrolling ---------- */

  function setStatus(text) {
    $("status").textContent = text || "";
  }
  var OFFLINE_TEXT = "Offline — the reply keeps going and will be here when you are back.";
  function clearOffline() {
    if ($("status").textContent === OFFLINE_TEXT) setStatus("");
  }
  function showComposerError(text) {
    $("composer-error").textContent = text || "";
  }
  function nearBottom() {
    var log = $("log");
    return log.scrollHeight - log.scrollTop - log.clientHeight < 120;
  }
  function scrollToBottom() {
    var log = $("log");
    log.scrollTop = log.scrollHeight;
  }

  /* ---------- rendering ---------- */

  function renderItem(item) {
    var node = state.nodes.get(item);
    if (item.kind === "user") {
      var editing = state.editing === item;
      if (!node || node.dataset.editing !== String(editing) || node.dataset.choice !== choiceKey(item)) {
        node = V.userNode(item, {
          choice: state.branches.choice(item.parentId, item.eventId),
          onSwitch: showBranch,
          editing: editing,
          onEditStart: editStart,
          onEditCancel: editCancel,
          onEdit: editSend,
        });
        node.dataset.editing = String(editing);
        node.dataset.choice = choiceKey(item);
        var old = state.nodes.get(item);
        if (old && old.parentNode) old.parentNode.replaceChild(node, old); // in place
        state.nodes.set(item, node);
      }
      node.classList.toggle("found", !!state.found && item.eventId === state.found);
      return node;
    }
    if (item.kind === "reply" && item.finalEventId && item.feedback === null && state.feedback[item.finalEventId]) {
      var given = state.feedback[item.finalEventId];
      item.feedback = given.rating;
      item.feedbackNote = { comment: given.comment, tags: given.tags };
    }
    node = V.replyNode(item, node, retry, rate, {
      choice: item.firstEventId ? state.branches.choice(item.parentId, item.firstEventId) : null,
      onSwitch: showBranch,
      onRegenerate: regenerate,
      onApprove: answerApproval,
      feedback: { onOpen: feedbackOpen, onSave: feedbackSave, onCancel: feedbackCancel },
    });
    node.classList.toggle("found", !!state.found && item.finalEventId === state.found);
    state.nodes.set(item, node);
    return node;
  }

  function choiceKey(item) {
    var c = state.branches.choice(item.parentId, item.eventId);
    return c ? c.index + "/" + c.count : "";
  }

  function renderAll() {
    var container = $("messages");
    container.replaceChildren.apply(container, state.timeline.items.map(renderItem));
    refreshChrome();
  }

  /* Streaming deltas re-render their reply at most once per frame. */
  function queueRender(item) {
    state.renderQueued.add(item);
    if (state.renderScheduled) return;
    state.renderScheduled = true;
    requestAnimationFrame(function () {
      state.renderScheduled = false;
      var stick = nearBottom();
      var container = $("messages");
      state.renderQueued.forEach(function (it) {
        var fresh = !state.nodes.has(it);
        var node = renderItem(it);
        if (fresh || node.parentNode !== container) container.appendChild(node);
      });
      state.renderQueued.clear();
      refreshChrome();
      if (stick) scrollToBottom();
    });
  }

  function refreshChrome() {
    var hasSession = !!state.sessionId;
    $("empty").hidden = state.timeline.items.length > 0;
    $("rename").hidden = !hasSession;
    $("export").hidden = !hasSession;
    $("share").hidden = !hasSession;
    if (hasSession) $("export").href = "/v1/sessions/" + state.sessionId + "/export?format=markdown";
    $("delete").hidden = !hasSession;
    $("doc-label").hidden = !hasSession;
    $("stop").hidden = !(hasSession && state.timeline.busy());
    $("load-older").hidden = state.olderCursor === null;
  }

  /* ---------- sessions ---------- */

  function setTitle(title) {
    $("chat-title").textContent = title || (state.sessionId ? "Untitled chat" : "New chat");
    document.title = (title ? title + " · " : "") + "SomaAgent";
  }

  function resetSession(sessionId, branch) {
    if (state.stream) state.stream.close();
    state.stream = null;
    state.generation += 1;
    if (sessionId !== state.sessionId) chatFiles.reset();
    state.sessionId = sessionId;
    state.branch = branch || null;
    state.found = null;
    state.olderLoad = null;
    state.branches = new Branches();
    state.editing = null;
    state.timeline = new Timeline(0);
    state.nodes = new Map();
    state.olderCursor = null;
    state.feedback = {};
    state.renderQueued.clear();
    showComposerError("");
    setStatus("");
    renderAll();
    sidebar.render();
  }

  function newChat(push) {
    resetSession(null);
    setTitle("");
    if (push) history.pushState({}, "", "/");
    $("composer-input").focus();
  }

  /* Open a chat: its active branch, or the branch through the event `branch`; at `target` (an
   * event a search found: its branch is shown, older pages are loaded until it is there, and it
   * is scrolled to and marked), else at the newest message. */
  function openSession(sessionId, push, branch, target) {
    resetSession(sessionId, branch);
    var gen = state.generation;
    var path = "/c/" + sessionId + "/" + (target ? "#event-" + target : "");
    if (push) history.pushState({ sessionId: sessionId }, "", path);
    setStatus("Loading…");
    return api("GET", "/v1/sessions/" + sessionId).then(function (res) {
      if (gen !== state.generation) return;
      if (res.status === 404) {
        state.sessionId = null;
        setTitle("Chat not found");
        setStatus("This chat does not exist (or was deleted).");
        refreshChrome();
        return;
      }
      if (!res.ok) return setStatus(errorText(res));
      setTitle(res.data.title);
      return loadLatest(gen, parseInt(res.data.last_event_id, 10) || 0).then(function () {
        if (target) reveal(gen, target, 0);
      });
    });
  }

  /* Scroll to the message or reply eventId and mark it, loading older pages until it is shown. */
  function reveal(gen, eventId, rounds) {
    if (gen !== state.generation) return;
    var item = state.timeline.items.find(function (it) {
      return it.eventId === eventId || it.finalEventId === eventId;
    });
    if (item) {
      state.found = eventId;
      var node = renderItem(item);
      node.scrollIntoView({ block: "center" });
      return;
    }
    if (state.olderCursor === null || rounds > 200) {
      setStatus("That message is not in this chat any more.");
      return;
    }
    loadOlder().then(function () {
      reveal(gen, eventId, rounds + 1);
    });
  }

  /* Pages upwards until the page starts at a user message (or the session's start). */
  function pageFrom(gen, before) {
    var collected = [];
    function step(cursor, rounds) {
      var url = "/v1/sessions/" + state.sessionId + "/events?limit=" + PAGE + "&before=" + cursor;
      if (state.branch) url += "&branch=" + encodeURIComponent(state.branch);
      return api("GET", url).then(function (res) {
        if (gen !== state.generation) return null;
        if (!res.ok) throw new Error(errorText(res));
        state.branches.seed(res.data.siblings);
        res.data.events.forEach(function (e) {
          state.branches.learn(e);
          state.branches.take(e);
        });
        var events = res.data.events.concat(collected);
        var atStart = res.data.prev_cursor === null;
        var cut = Timeline.trimPage(events, atStart);
        if (atStart || cut.startCursor !== null || rounds > 20) return { cut: cut, atStart: atStart };
        collected = events;
        return step(res.data.prev_cursor, rounds + 1);
      });
    }
    return step(before, 0);
  }

  function loadLatest(gen, lastEventId) {
    return pageFrom(gen, lastEventId + 1)
      .then(function (page) {
        if (!page) return;
        state.timeline = new Timeline(0);
        page.cut.events.forEach(function (e) {
          state.timeline.apply(e);
        });
        var after = page.cut.after === null ? lastEventId : page.cut.after;
        state.timeline.last = after;
        state.olderCursor = page.atStart ? null : page.cut.startCursor;
        setStatus("");
        renderAll();
        scrollToBottom();
        connect();
        loadFeedback(gen);
      })
      .catch(function (err) {
        setStatus("Could not load this chat: " + err.message);
      });
  }

  /* Load the page before the oldest shown; the promise ends when it is shown (one load at a time). */
  function loadOlder() {
    if (state.olderLoad) return state.olderLoad;
    if (state.olderCursor === null) return Promise.resolve();
    var gen = state.generation;
    var log = $("log");
    state.olderLoad = pageFrom(gen, state.olderCursor)
      .then(function (page) {
        if (!page) return;
        var before = log.scrollHeight;
        state.timeline.prepend(page.cut.kept);
        state.olderCursor = page.atStart ? null : page.cut.startCursor;
        renderAll();
        log.scrollTop += log.scrollHeight - before;
      })
      .catch(function (err) {
        setStatus("Could not load older messages: " + err.message);
      })
      .finally(function () {
        if (gen === state.generation) state.olderLoad = null;
      });
    return state.olderLoad;
  }

  /* ---------- WebSocket ---------- */

  function connect() {
    if (!state.sessionId) return;
    if (!state.stream) {
      var sid = state.sessionId;
      state.stream = new window.SomaStream({
        path: "/ws/sessions/" + sid + "/",
        after: function () {
          return state.timeline.last;
        },
        onFrame: onFrame,
        onStatus: setStatus,
        probe: function () {
          return api("GET", "/v1/sessions/" + sid).then(function (res) {
            return res.status;
          });
        },
      });
    }
    state.stream.open();
  }

  function onFrame(frame, sent) {
    if (Timeline.isEvent(frame) && navigator.onLine !== false) clearOffline(); // the stream is live
    if (Timeline.isEvent(frame)) {
      var shown = state.branches.accepts(frame);
      if (state.branches.learn(frame)) rerenderChoices(); // a new version of something shown
      if (!shown) return; // another branch's
      var item = state.timeline.apply(frame);
      if (item) state.branches.take(frame);
      if (item) queueRender(item);
      if (item && item.kind === "reply" && !state.timeline.busy() && $("status").textContent === "Stopping…") {
        setStatus("");
      }
    } else if (frame.type === "error") {
      if (sent && sent.type === "message" && !$("composer-input").value) $("composer-input").value = sent.message;
      showComposerError((frame.error && frame.error.message) || "The server refused that.");
    }
  }

  /* ---------- sending ---------- */

  function send(text, attachmentIds) {
    showComposerError("");
    var key = uuid();
    if (!state.sessionId) {
      var body = { message: text };
      if (attachmentIds.length) body.attachments = attachmentIds;
      var waiting = function (seconds) {
        setStatus("Can't reach the server, retrying in " + seconds + " s… (your message is kept)");
      };
      return SomaHttp.apiRetrying("POST", "/v1/session/message", body, { "Idempotency-Key": key }, {
        onWaiting: waiting,
      }).then(function (res) {
        setStatus("");
        if (!res.ok) throw new Error(errorText(res));
        var sid = res.data.session_id;
        resetSession(sid);
        history.pushState({ sessionId: sid }, "", "/c/" + sid + "/");
        setTitle(text.trim().slice(0, 80));
        connect();
        sidebar.load(true);
      });
    }
    var frame = { type: "message", message: text, idempotency_key: key, ref: key };
    if (state.branch && state.branches.leaf && !state.timeline.busy()) {
      frame.parent_event_id = state.branches.leaf; // go on with the branch shown, not the newest
      state.branch = null; // the message makes it the newest
    }
    if (attachmentIds.length) frame.attachments = attachmentIds;
    if (!state.stream) connect();
    state.stream.send(frame);
    return Promise.resolve();
  }

  function submit() {
    var input = $("composer-input");
    var text = input.value;
    if (uploads.busy()) {
      showComposerError("Wait until the files have uploaded.");
      return;
    }
    if (!text.trim()) {
      showComposerError(uploads.readyIds().length ? "Write a message to go with the files." : "");
      return;
    }
    var ids = uploads.readyIds();
    input.value = "";
    var kept = uploads.take();
    send(text, ids).catch(function (err) {
      input.value = text;
      uploads.restore(kept);
      showComposerError(err.message || "Could not send the message.");
    });
    input.focus();
  }

  function retry(reply) {
    var user = reply.replyTo ? state.timeline.userItem(reply.replyTo) : null;
    if (!user) return showComposerError("Could not find the message to send again.");
    send(
      user.text,
      user.attachments.map(function (a) {
        return a.id;
      })
    );
    $("composer-input").focus();
  }

  /* ---------- branches: switch, edit, regenerate ---------- */

  function rerenderChoices() {
    state.timeline.items.forEach(function (item) {
      queueRender(item);
    });
  }

  /* Show the branch through eventId (down to its newest event). */
  function showBranch(eventId) {
    if (!state.sessionId) return;
    openSession(state.sessionId, false, eventId);
  }

  function editStart(item) {
    state.editing = item;
    queueRender(item);
  }

  function editCancel() {
    var item = state.editing;
    state.editing = null;
    if (item) queueRender(item);
  }

  /* The edited text goes under the edited message's parent: a new version of it, on a new branch. */
  function editSend(item, text) {
    var body = { message: text, session_id: state.sessionId, parent_event_id: item.parentId || "root" };
    api("POST", "/v1/session/message", body, { "Idempotency-Key": uuid() }).then(function (res) {
      if (!res.ok) return showComposerError(errorText(res));
      showBranch(res.data.event_id);
    });
  }

  /* Another reply to the message a reply answers, shown in its place (the old one stays a version). */
  function regenerate(reply) {
    var messageId = reply.replyTo;
    if (!state.sessionId || !messageId || state.timeline.busy()) return;
    var gen = state.generation;
    // Cut first: the new reply may stream in before the answer below arrives.
    state.timeline.cutAfterMessage(messageId);
    state.branches.cutAfter(messageId);
    state.branch = null;
    renderAll();
    var url = "/v1/sessions/" + state.sessionId + "/events/" + messageId + "/regenerate";
    api("POST", url, undefined, { "Idempotency-Key": uuid() }).then(function (res) {
      if (gen !== state.generation) return;
      if (!res.ok) {
        showComposerError(errorText(res));
        openSession(state.sessionId, false);
      }
    });
  }

  /* What you rated before in this chat, so the thumbs show it after a reload. */
  function loadFeedback(gen) {
    api("GET", "/v1/sessions/" + state.sessionId + "/feedback").then(function (res) {
      if (gen !== state.generation || !res.ok) return;
      res.data.feedback.forEach(function (f) {
        state.feedback[f.event_id] = { rating: f.rating, comment: f.comment, tags: f.tags };
      });
      state.timeline.items.forEach(function (item) {
        if (item.kind === "reply" && item.finalEventId && state.feedback[item.finalEventId]) queueRender(item);
      });
    });
  }

  /* A read-only link to the chat as it is now; shown, and copied when the browser allows. */
  function share() {
    if (!state.sessionId) return;
    api("POST", "/v1/sessions/" + state.sessionId + "/shares", {}).then(function (res) {
      if (!res.ok) return setStatus(errorText(res));
      var url = res.data.url;
      setStatus("Read-only link to this chat as it is now: " + url);
      if (navigator.clipboard) navigator.clipboard.writeText(url).catch(function () {});
    });
  }

  /* Thumbs up or down on a finished reply (a comment given is kept), then the form for a comment
   * and tags opens; the same thumb again takes the feedback back. */
  function rate(reply, rating) {
    if (!state.sessionId || !reply.finalEventId) return;
    var url = "/v1/sessions/" + state.sessionId + "/events/" + reply.finalEventId + "/feedback";
    var undo = reply.feedback === rating;
    var comment = reply.feedbackNote ? reply.feedbackNote.comment : "";
    var body = { rating: rating, comment: comment, tags: [] }; // the tags are a rating's own
    (undo ? api("DELETE", url) : api("PUT", url, body)).then(function (res) {
      if (!res.ok) return setStatus(errorText(res));
      feedbackStored(reply, undo ? null : res.data);
      if (!undo) reply.feedbackDraft = { comment: comment, tags: [] };
      queueRender(reply);
    });
  }

  function feedbackStored(reply, given) {
    reply.feedback = given ? given.rating : null;
    reply.feedbackNote = given ? { comment: given.comment, tags: given.tags } : null;
    reply.feedbackDraft = null;
    if (given) state.feedback[reply.finalEventId] = { rating: given.rating, comment: given.comment, tags: given.tags };
    else delete state.feedback[reply.finalEventId];
  }

  function feedbackOpen(reply) {
    var note = reply.feedbackNote || { comment: "", tags: [] };
    reply.feedbackDraft = { comment: note.comment, tags: note.tags.slice() };
    queueRender(reply);
  }

  function feedbackCancel(reply) {
    reply.feedbackDraft = null;
    queueRender(reply);
  }

  /* The comment and tags of the rating given, saved with it. */
  function feedbackSave(reply, comment, tags) {
    if (!state.sessionId || !reply.finalEventId || !reply.feedback) return;
    var url = "/v1/sessions/" + state.sessionId + "/events/" + reply.finalEventId + "/feedback";
    api("PUT", url, { rating: reply.feedback, comment: comment, tags: tags }).then(function (res) {
      if (!res.ok) return setStatus(errorText(res));
      feedbackStored(reply, res.data);
      queueRender(reply);
    });
  }

  /* Answer a tool call that waits for approval (the stream's tool.approval_decided confirms it). */
  function answerApproval(reply, approval, decision, always) {
    if (!state.sessionId || approval.state !== "pending") return;
    var body = { decision: decision };
    if (always) body.always = true;
    var url = "/v1/sessions/" + state.sessionId + "/approvals/" + encodeURIComponent(approval.callId);
    api("POST", url, body).then(function (res) {
      if (!res.ok) return setStatus(errorText(res));
      approval.state = res.data.status;
      approval.decidedBy = res.data.decided_by || "";
      queueRender(reply);
    });
  }

  function stop() {
    if (!state.sessionId) return;
    if (!state.stream || !state.stream.sendNow({ type: "cancel", ref: uuid() })) {
      api("POST", "/v1/sessions/" + state.sessionId + "/cancel");
    }
    setStatus("Stopping…");
  }

  /* ---------- rename, delete ---------- */

  function startRename() {
    $("rename-input").value = $("chat-title").textContent;
    $("rename-form").hidden = false;
    $("chat-title").hidden = true;
    $("rename-input").focus();
    $("rename-input").select();
  }
  function endRename() {
    $("rename-form").hidden = true;
    $("chat-title").hidden = false;
    $("chat-title").focus();
  }
  function saveRename(ev) {
    ev.preventDefault();
    var title = $("rename-input").value.trim();
    if (!title) return;
    api("PATCH", "/v1/sessions/" + state.sessionId, { title: title }).then(function (res) {
      if (!res.ok) return setStatus(errorText(res));
      setTitle(res.data.title);
      endRename();
      sidebar.load(true);
    });
  }
  function deleteSession() {
    if (!window.confirm("Delete this chat and all its messages?")) return;
    api("DELETE", "/v1/sessions/" + state.sessionId).then(function (res) {
      if (res.status !== 204 && res.status !== 404) return setStatus(errorText(res));
      newChat(true);
      sidebar.load(true);
      setStatus("Chat deleted.");
    });
  }

  /* ---------- wiring ---------- */

  $("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    submit();
  });
  $("composer-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      submit();
    }
  });
  $("file-input").addEventListener("change", function (ev) {
    uploads.add(ev.target.files);
    ev.target.value = "";
  });
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", function () {
    newChat(true);
    sidebar.close();
  });
  $("more-sessions").addEventListener("click", function () {
    sidebar.load(false);
  });
  $("load-older").addEventListener("click", loadOlder);
  $("rename").addEventListener("click", startRename);
  $("rename-cancel").addEventListener("click", endRename);
  $("rename-form").addEventListener("submit", saveRename);
  $("rename-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") endRename();
  });
  $("delete").addEventListener("click", deleteSession);
  $("share").addEventListener("click", share);
  var searchTimer = null;
  $("search-input").addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      sidebar.search($("search-input").value);
    }, 250);
  });
  $("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearTimeout(searchTimer);
    sidebar.search($("search-input").value);
  });
  $("open-sidebar").addEventListener("click", function () {
    sidebar.open();
  });
  $("close-sidebar").addEventListener("click", function () {
    sidebar.close();
    $("open-sidebar").focus();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && sidebar.close()) $("open-sidebar").focus();
  });
  window.addEventListener("online", function () {
    if (!state.stream) return clearOffline();
    // A short drop can leave the socket open: then no reconnect comes to clear the banner.
    if (state.stream.isOpen()) clearOffline();
    else state.stream.nudge();
  });
  window.addEventListener("offline", function () {
    setStatus(OFFLINE_TEXT);
  });
  window.addEventListener("popstate", function () {
    var m = location.pathname.match(/^\/c\/([0-9a-f-]{36})\/?$/);
    if (m) openSession(m[1], false);
    else newChat(false);
  });
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries[0].isIntersecting) loadOlder();
    }).observe($("load-older"));
  }

  sidebar.load(true);
  var linked = location.hash.match(/^#event-([0-9a-f-]{36})$/); // a search result opened in a new tab
  if (cfg.sessionId) openSession(cfg.sessionId, false, linked && linked[1], linked && linked[1]);
  else newChat(false);
  window.somaChat = {
    state: state, // for debugging in the console
    reloadChats: function () {
      sidebar.load(true); // after an import (data.js)
    },
  };
})();
