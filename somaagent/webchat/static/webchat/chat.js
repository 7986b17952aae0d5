/* The web chat: sessions from the HTTP API, replies from the WebSocket, folded by SomaTimeline.
 *
 * A session opens with its latest history page, cut after the last finished turn;
 * the WebSocket then streams from that cursor, so a running reply (deltas included)
 * arrives whole. On any disconnect it reconnects from the last applied cursor: no
 * gap, no duplicate. Messages carry an idempotency key and are re-sent after a
 * reconnect until acknowledged, so none is lost or doubled.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("chat-config").textContent);
  var Timeline = window.SomaTimeline;
  var V = window.SomaView;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var PAGE = 50;
  var HEARTBEAT_TIMEOUT_MS = 45000;

  var state = {
    sessionId: null,
    generation: 0, // bumps whenever the open session changes; stale callbacks check it
    timeline: new Timeline(0),
    nodes: new Map(),
    olderCursor: null,
    ws: null,
    wsOpened: false,
    backoff: 500,
    reconnectTimer: null,
    watchdog: null,
    outbox: new Map(), // ref -> frame, until acknowledged
    uploads: [],
    sessions: [],
    nextSessionsOffset: 0,
    renderQueued: new Set(),
    renderScheduled: false,
    loadingOlder: false,
  };

  /* ---------- HTTP ---------- */

  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function api(method, url, body, headers) {
    var init = { method: method, credentials: "same-origin", headers: Object.assign({ Accept: "application/json" }, headers || {}) };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      if (r.status === 401) toLogin();
      return r.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        return { status: r.status, ok: r.ok, data: data };
      });
    });
  }

  function errorText(res) {
    if (res && res.data && res.data.error) return res.data.error.message;
    return "Something went wrong (" + (res ? res.status : "network") + ").";
  }

  function toLogin() {
    window.location.assign(cfg.loginUrl + "?next=" + encodeURIComponent(window.location.pathname));
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  /* ---------- status, scrolling ---------- */

  function setStatus(text) {
    $("status").textContent = text || "";
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
      if (!node) {
        node = V.userNode(item);
        state.nodes.set(item, node);
      }
      return node;
    }
    node = V.replyNode(item, node, retry);
    state.nodes.set(item, node);
    return node;
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
    $("delete").hidden = !hasSession;
    $("stop").hidden = !(hasSession && state.timeline.busy());
    $("load-older").hidden = state.olderCursor === null;
  }

  /* ---------- sessions ---------- */

  function loadSessions(reset) {
    var offset = reset ? 0 : state.nextSessionsOffset;
    return api("GET", "/v1/sessions?limit=30&offset=" + offset).then(function (res) {
      if (!res.ok) return;
      state.sessions = reset ? res.data.sessions : state.sessions.concat(res.data.sessions);
      state.nextSessionsOffset = res.data.next_offset;
      renderSessions();
    });
  }

  function renderSessions() {
    var list = $("session-list");
    list.replaceChildren.apply(
      list,
      state.sessions.map(function (s) {
        return V.sessionItem(s, s.session_id === state.sessionId, function (id) {
          openSession(id, true);
          closeSidebar();
        });
      })
    );
    $("more-sessions").hidden = state.nextSessionsOffset === null || state.nextSessionsOffset === undefined;
  }

  function setTitle(title) {
    $("chat-title").textContent = title || (state.sessionId ? "Untitled chat" : "New chat");
    document.title = (title ? title + " · " : "") + "SomaAgent";
  }

  function resetSession(sessionId) {
    closeSocket();
    state.generation += 1;
    state.sessionId = sessionId;
    state.timeline = new Timeline(0);
    state.nodes = new Map();
    state.olderCursor = null;
    state.outbox.clear();
    state.renderQueued.clear();
    state.backoff = 500;
    showComposerError("");
    setStatus("");
    renderAll();
    renderSessions();
  }

  function newChat(push) {
    resetSession(null);
    setTitle("");
    if (push) history.pushState({}, "", "/");
    $("composer-input").focus();
  }

  function openSession(sessionId, push) {
    resetSession(sessionId);
    var gen = state.generation;
    if (push) history.pushState({ sessionId: sessionId }, "", "/c/" + sessionId + "/");
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
      return loadLatest(gen, parseInt(res.data.last_event_id, 10) || 0);
    });
  }

  /* Pages upwards until the page starts at a user message (or the session's start). */
  function pageFrom(gen, before) {
    var collected = [];
    function step(cursor, rounds) {
      return api("GET", "/v1/sessions/" + state.sessionId + "/events?limit=" + PAGE + "&before=" + cursor).then(function (res) {
        if (gen !== state.generation) return null;
        if (!res.ok) throw new Error(errorText(res));
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
      })
      .catch(function (err) {
        setStatus("Could not load this chat: " + err.message);
      });
  }

  function loadOlder() {
    if (state.olderCursor === null || state.loadingOlder) return;
    state.loadingOlder = true;
    var gen = state.generation;
    var log = $("log");
    pageFrom(gen, state.olderCursor)
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
        state.loadingOlder = false;
      });
  }

  /* ---------- WebSocket ---------- */

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.watchdog);
    if (state.ws) {
      var ws = state.ws;
      state.ws = null;
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      try {
        ws.close(1000);
      } catch (e) {
        /* already closed */
      }
    }
  }

  function armWatchdog() {
    clearTimeout(state.watchdog);
    state.watchdog = setTimeout(function () {
      if (state.ws) state.ws.close(4000, "no heartbeat");
    }, HEARTBEAT_TIMEOUT_MS);
  }

  function connect() {
    closeSocket();
    if (!state.sessionId) return;
    var gen = state.generation;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + "/ws/sessions/" + state.sessionId + "/?after=" + state.timeline.last;
    var ws = new WebSocket(url, ["soma.v1"]);
    state.ws = ws;
    state.wsOpened = false;
    ws.onopen = function () {
      state.wsOpened = true;
      state.backoff = 500;
      setStatus("");
      armWatchdog();
      state.outbox.forEach(function (frame) {
        ws.send(JSON.stringify(frame));
      });
    };
    ws.onmessage = function (msg) {
      armWatchdog();
      var frame;
      try {
        frame = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (Timeline.isEvent(frame)) {
        var item = state.timeline.apply(frame);
        if (item) queueRender(item);
        if (item && item.kind === "reply" && !state.timeline.busy() && $("status").textContent === "Stopping…") {
          setStatus("");
        }
      } else if (frame.type === "ack") {
        state.outbox.delete(frame.ref);
      } else if (frame.type === "error") {
        onFrameError(frame);
      }
    };
    ws.onclose = function () {
      if (state.ws !== ws || gen !== state.generation) return;
      state.ws = null;
      clearTimeout(state.watchdog);
      if (!state.wsOpened) return probeThenReconnect(gen);
      scheduleReconnect(gen);
    };
  }

  function scheduleReconnect(gen) {
    setStatus(navigator.onLine === false ? "Offline — waiting for the network…" : "Reconnecting…");
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(function () {
      if (gen === state.generation) connect();
    }, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 10000);
  }

  /* A refused handshake says nothing to a browser; ask the API why. */
  function probeThenReconnect(gen) {
    api("GET", "/v1/sessions/" + state.sessionId)
      .then(function (res) {
        if (gen !== state.generation) return;
        if (res.status === 404) {
          setStatus("This chat no longer exists.");
          return;
        }
        scheduleReconnect(gen);
      })
      .catch(function () {
        scheduleReconnect(gen);
      });
  }

  function onFrameError(frame) {
    var pending = state.outbox.get(frame.ref);
    state.outbox.delete(frame.ref);
    if (pending && pending.type === "message" && !$("composer-input").value) {
      $("composer-input").value = pending.message;
    }
    showComposerError((frame.error && frame.error.message) || "The server refused that.");
  }

  /* ---------- sending ---------- */

  function readyUploads() {
    return state.uploads.filter(function (u) {
      return u.state === "ready";
    });
  }

  function send(text, attachmentIds) {
    showComposerError("");
    var key = uuid();
    if (!state.sessionId) {
      var body = { message: text };
      if (attachmentIds.length) body.attachments = attachmentIds;
      return api("POST", "/v1/session/message", body, { "Idempotency-Key": key }).then(function (res) {
        if (!res.ok) throw new Error(errorText(res));
        var sid = res.data.session_id;
        resetSession(sid);
        history.pushState({ sessionId: sid }, "", "/c/" + sid + "/");
        setTitle(text.trim().slice(0, 80));
        connect();
        loadSessions(true);
      });
    }
    var frame = { type: "message", message: text, idempotency_key: key, ref: key };
    if (attachmentIds.length) frame.attachments = attachmentIds;
    state.outbox.set(key, frame);
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
    else if (!state.ws) connect();
    return Promise.resolve();
  }

  function submit() {
    var input = $("composer-input");
    var text = input.value;
    if (state.uploads.some(function (u) { return u.state === "uploading"; })) {
      showComposerError("Wait until the files have uploaded.");
      return;
    }
    if (!text.trim()) {
      showComposerError(readyUploads().length ? "Write a message to go with the files." : "");
      return;
    }
    var ids = readyUploads().map(function (u) {
      return u.id;
    });
    input.value = "";
    var kept = state.uploads;
    state.uploads = [];
    renderUploads();
    send(text, ids).catch(function (err) {
      input.value = text;
      state.uploads = kept;
      renderUploads();
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

  function stop() {
    if (!state.sessionId) return;
    var ref = uuid();
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ type: "cancel", ref: ref }));
    } else {
      api("POST", "/v1/sessions/" + state.sessionId + "/cancel");
    }
    setStatus("Stopping…");
  }

  /* ---------- attachments ---------- */

  function renderUploads() {
    var list = $("attachments");
    list.replaceChildren.apply(
      list,
      state.uploads.map(function (u) {
        return V.uploadChip(u, function (gone) {
          state.uploads = state.uploads.filter(function (x) {
            return x !== gone;
          });
          renderUploads();
          $("composer-input").focus();
        });
      })
    );
  }

  function addFiles(files) {
    Array.prototype.forEach.call(files, function (file) {
      var upload = { name: file.name, size: file.size, state: "uploading", id: null, error: "" };
      state.uploads.push(upload);
      if (file.size > cfg.uploads.max_bytes) {
        upload.state = "failed";
        upload.error = "larger than " + V.formatBytes(cfg.uploads.max_bytes);
        return;
      }
      var form = new FormData();
      form.append("file", file);
      if (state.sessionId) form.append("session_id", state.sessionId);
      api("POST", "/v1/attachments", form)
        .then(function (res) {
          if (!res.ok) {
            upload.state = "failed";
            upload.error = errorText(res);
          } else {
            upload.id = res.data.attachment_id;
            upload.state = res.data.status === "clean" ? "ready" : "quarantined";
          }
        })
        .catch(function () {
          upload.state = "failed";
          upload.error = "network error";
        })
        .finally(renderUploads);
    });
    renderUploads();
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
      loadSessions(true);
    });
  }
  function deleteSession() {
    if (!window.confirm("Delete this chat and all its messages?")) return;
    api("DELETE", "/v1/sessions/" + state.sessionId).then(function (res) {
      if (res.status !== 204 && res.status !== 404) return setStatus(errorText(res));
      newChat(true);
      loadSessions(true);
      setStatus("Chat deleted.");
    });
  }

  /* ---------- narrow screens ---------- */

  function openSidebar() {
    document.body.classList.add("sidebar-open");
    $("open-sidebar").setAttribute("aria-expanded", "true");
    $("new-chat").focus();
  }
  function closeSidebar() {
    if (!document.body.classList.contains("sidebar-open")) return;
    document.body.classList.remove("sidebar-open");
    $("open-sidebar").setAttribute("aria-expanded", "false");
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
    addFiles(ev.target.files);
    ev.target.value = "";
  });
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", function () {
    newChat(true);
    closeSidebar();
  });
  $("more-sessions").addEventListener("click", function () {
    loadSessions(false);
  });
  $("load-older").addEventListener("click", loadOlder);
  $("rename").addEventListener("click", startRename);
  $("rename-cancel").addEventListener("click", endRename);
  $("rename-form").addEventListener("submit", saveRename);
  $("rename-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") endRename();
  });
  $("delete").addEventListener("click", deleteSession);
  $("open-sidebar").addEventListener("click", openSidebar);
  $("close-sidebar").addEventListener("click", function () {
    closeSidebar();
    $("open-sidebar").focus();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") closeSidebar();
  });
  window.addEventListener("online", function () {
    if (state.sessionId && !state.ws) {
      state.backoff = 500;
      connect();
    }
  });
  window.addEventListener("offline", function () {
    setStatus("Offline — the reply keeps going and will be here when you are back.");
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

  loadSessions(true);
  if (cfg.sessionId) openSession(cfg.sessionId, false);
  else newChat(false);
  window.somaChat = { state: state }; // for debugging in the console
})();
