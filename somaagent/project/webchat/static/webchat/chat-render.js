/* SomaChatRender: the open chat drawn on the page (part of the web chat; chat.js installs it).
 *
 * Each timeline item becomes a node through SomaView, kept in state.nodes and redrawn in place;
 * streaming deltas redraw their reply at most once per frame. Also the status line, the
 * composer's error, scrolling, and which of the page's controls show (refreshChrome).
 *
 * SomaChatRender(chat) adds to `chat`: setStatus, clearOffline, OFFLINE_TEXT, showComposerError,
 * scrollToBottom, renderItem, renderAll, queueRender, rerenderChoices, refreshChrome.
 * The callbacks it hands SomaView (retry, rate, showBranch, edit…, regenerate, answerApproval,
 * feedback…) are the other chat-*.js modules', looked up on `chat` when an item is drawn.
 */
(function (root) {
  "use strict";

  var V = root.SomaView;
  var $ = function (id) {
    return document.getElementById(id);
  };

  root.SomaChatRender = function (chat) {
    var state = chat.state;

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
            onSwitch: chat.showBranch,
            editing: editing,
            onEditStart: chat.editStart,
            onEditCancel: chat.editCancel,
            onEdit: chat.editSend,
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
      node = V.replyNode(item, node, chat.retry, chat.rate, {
        choice: item.firstEventId ? state.branches.choice(item.parentId, item.firstEventId) : null,
        onSwitch: chat.showBranch,
        onRegenerate: chat.regenerate,
        onApprove: chat.answerApproval,
        feedback: { onOpen: chat.feedbackOpen, onSave: chat.feedbackSave, onCancel: chat.feedbackCancel },
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

    /* Every item again: a `‹ n/m ›` may have changed anywhere. */
    function rerenderChoices() {
      state.timeline.items.forEach(function (item) {
        queueRender(item);
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

    chat.setStatus = setStatus;
    chat.OFFLINE_TEXT = OFFLINE_TEXT;
    chat.clearOffline = clearOffline;
    chat.showComposerError = showComposerError;
    chat.scrollToBottom = scrollToBottom;
    chat.renderItem = renderItem;
    chat.renderAll = renderAll;
    chat.queueRender = queueRender;
    chat.rerenderChoices = rerenderChoices;
    chat.refreshChrome = refreshChrome;
  };
})(window);
