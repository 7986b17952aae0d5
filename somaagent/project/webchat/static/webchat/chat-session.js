/* SomaChatSession: which chat is open, its history and its live stream (part of the web chat;
 * chat.js installs it).
 *
 * A session opens with its latest history page, cut after the last finished turn; the WebSocket
 * (SomaStream) then streams from that cursor, so a running reply (deltas included) arrives whole,
 * and after any disconnect it goes on from the last applied cursor: no gap, no duplicate. Older
 * pages load on demand. The chat shows one branch (the active one, or the one `‹ n/m ›` switched
 * to); live events of other branches are only counted (SomaBranches).
 *
 * SomaChatSession(chat) adds to `chat`: resetSession, newChat, openSession, showBranch, loadOlder,
 * connect.
 */
(function (root) {
  "use strict";

  var Timeline = root.SomaTimeline;
  var Branches = root.SomaBranches;
  var Http = root.SomaHttp;
  var api = Http.api;
  var errorText = Http.errorText;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var PAGE = 50;

  root.SomaChatSession = function (chat) {
    var state = chat.state;

    function resetSession(sessionId, branch) {
      if (state.stream) state.stream.close();
      state.stream = null;
      state.generation += 1;
      if (sessionId !== state.sessionId) chat.chatFiles.reset();
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
      chat.showComposerError("");
      chat.setStatus("");
      chat.renderAll();
      chat.sidebar.render();
    }

    function newChat(push) {
      resetSession(null);
      chat.setTitle("");
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
      chat.setStatus("Loading…");
      return api("GET", "/v1/sessions/" + sessionId).then(function (res) {
        if (gen !== state.generation) return;
        if (res.status === 404) {
          state.sessionId = null;
          chat.setTitle("Chat not found");
          chat.setStatus("This chat does not exist (or was deleted).");
          chat.refreshChrome();
          return;
        }
        if (!res.ok) return chat.setStatus(errorText(res));
        chat.setTitle(res.data.title);
        return loadLatest(gen, parseInt(res.data.last_event_id, 10) || 0).then(function () {
          if (target) reveal(gen, target, 0);
        });
      });
    }

    /* Show the branch through eventId (down to its newest event). */
    function showBranch(eventId) {
      if (!state.sessionId) return;
      openSession(state.sessionId, false, eventId);
    }

    /* Scroll to the message or reply eventId and mark it, loading older pages until it is shown. */
    function reveal(gen, eventId, rounds) {
      if (gen !== state.generation) return;
      var item = state.timeline.items.find(function (it) {
        return it.eventId === eventId || it.finalEventId === eventId;
      });
      if (item) {
        state.found = eventId;
        var node = chat.renderItem(item);
        node.scrollIntoView({ block: "center" });
        return;
      }
      if (state.olderCursor === null || rounds > 200) {
        chat.setStatus("That message is not in this chat any more.");
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
          chat.setStatus("");
          chat.renderAll();
          chat.scrollToBottom();
          connect();
          chat.loadFeedback(gen);
        })
        .catch(function (err) {
          chat.setStatus("Could not load this chat: " + err.message);
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
          chat.renderAll();
          log.scrollTop += log.scrollHeight - before;
        })
        .catch(function (err) {
          chat.setStatus("Could not load older messages: " + err.message);
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
        state.stream = new root.SomaStream({
          path: "/ws/sessions/" + sid + "/",
          after: function () {
            return state.timeline.last;
          },
          onFrame: onFrame,
          onStatus: chat.setStatus,
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
      if (Timeline.isEvent(frame) && navigator.onLine !== false) chat.clearOffline(); // the stream is live
      if (Timeline.isEvent(frame)) {
        var shown = state.branches.accepts(frame);
        if (state.branches.learn(frame)) chat.rerenderChoices(); // a new version of something shown
        if (!shown) return; // another branch's
        var item = state.timeline.apply(frame);
        if (item) state.branches.take(frame);
        if (item) chat.queueRender(item);
        if (item && item.kind === "reply" && !state.timeline.busy() && $("status").textContent === "Stopping…") {
          chat.setStatus("");
        }
      } else if (frame.type === "error") {
        if (sent && sent.type === "message" && !$("composer-input").value) $("composer-input").value = sent.message;
        chat.showComposerError((frame.error && frame.error.message) || "The server refused that.");
      }
    }

    chat.resetSession = resetSession;
    chat.newChat = newChat;
    chat.openSession = openSession;
    chat.showBranch = showBranch;
    chat.loadOlder = loadOlder;
    chat.connect = connect;
  };
})(window);
