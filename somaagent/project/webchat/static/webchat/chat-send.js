/* SomaChatSend: what goes to the agent from the page (part of the web chat; chat.js installs it).
 *
 * The composer's message with its uploaded files (a new chat's first message over HTTP, retried
 * while the server cannot be reached; later ones over the WebSocket, with an idempotency key,
 * re-sent after a reconnect until acknowledged, so none is lost or doubled), Retry of a failed
 * reply, and Stop. Branches: an edit sends the new text as a message under the edited one's
 * parent; regenerate asks for another reply to a message. Both then show the new branch; a
 * message sent while another branch than the newest is shown goes on the shown one
 * (parent_event_id).
 *
 * SomaChatSend(chat) adds to `chat`: submit, retry, stop, editStart, editCancel, editSend,
 * regenerate.
 */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var api = Http.api;
  var errorText = Http.errorText;
  var uuid = Http.uuid;
  var $ = function (id) {
    return document.getElementById(id);
  };

  root.SomaChatSend = function (chat) {
    var state = chat.state;

    function send(text, attachmentIds) {
      chat.showComposerError("");
      var key = uuid();
      if (!state.sessionId) {
        var body = { message: text };
        if (attachmentIds.length) body.attachments = attachmentIds;
        var waiting = function (seconds) {
          chat.setStatus("Can't reach the server, retrying in " + seconds + " s… (your message is kept)");
        };
        return Http.apiRetrying("POST", "/v1/session/message", body, { "Idempotency-Key": key }, {
          onWaiting: waiting,
        }).then(function (res) {
          chat.setStatus("");
          if (!res.ok) throw new Error(errorText(res));
          var sid = res.data.session_id;
          chat.resetSession(sid);
          history.pushState({ sessionId: sid }, "", "/c/" + sid + "/");
          chat.setTitle(text.trim().slice(0, 80));
          chat.connect();
          chat.sidebar.load(true);
        });
      }
      var frame = { type: "message", message: text, idempotency_key: key, ref: key };
      if (state.branch && state.branches.leaf && !state.timeline.busy()) {
        frame.parent_event_id = state.branches.leaf; // go on with the branch shown, not the newest
        state.branch = null; // the message makes it the newest
      }
      if (attachmentIds.length) frame.attachments = attachmentIds;
      if (!state.stream) chat.connect();
      state.stream.send(frame);
      return Promise.resolve();
    }

    function submit() {
      var uploads = chat.uploads;
      var input = $("composer-input");
      var text = input.value;
      if (uploads.busy()) {
        chat.showComposerError("Wait until the files have uploaded.");
        return;
      }
      if (!text.trim()) {
        chat.showComposerError(uploads.readyIds().length ? "Write a message to go with the files." : "");
        return;
      }
      var ids = uploads.readyIds();
      input.value = "";
      var kept = uploads.take();
      send(text, ids).catch(function (err) {
        input.value = text;
        uploads.restore(kept);
        chat.showComposerError(err.message || "Could not send the message.");
      });
      input.focus();
    }

    function retry(reply) {
      var user = reply.replyTo ? state.timeline.userItem(reply.replyTo) : null;
      if (!user) return chat.showComposerError("Could not find the message to send again.");
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
      if (!state.stream || !state.stream.sendNow({ type: "cancel", ref: uuid() })) {
        api("POST", "/v1/sessions/" + state.sessionId + "/cancel");
      }
      chat.setStatus("Stopping…");
    }

    /* ---------- branches: edit, regenerate ---------- */

    function editStart(item) {
      state.editing = item;
      chat.queueRender(item);
    }

    function editCancel() {
      var item = state.editing;
      state.editing = null;
      if (item) chat.queueRender(item);
    }

    /* The edited text goes under the edited message's parent: a new version of it, on a new branch. */
    function editSend(item, text) {
      var body = { message: text, session_id: state.sessionId, parent_event_id: item.parentId || "root" };
      api("POST", "/v1/session/message", body, { "Idempotency-Key": uuid() }).then(function (res) {
        if (!res.ok) return chat.showComposerError(errorText(res));
        chat.showBranch(res.data.event_id);
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
      chat.renderAll();
      var url = "/v1/sessions/" + state.sessionId + "/events/" + messageId + "/regenerate";
      api("POST", url, undefined, { "Idempotency-Key": uuid() }).then(function (res) {
        if (gen !== state.generation) return;
        if (!res.ok) {
          chat.showComposerError(errorText(res));
          chat.openSession(state.sessionId, false);
        }
      });
    }

    chat.submit = submit;
    chat.retry = retry;
    chat.stop = stop;
    chat.editStart = editStart;
    chat.editCancel = editCancel;
    chat.editSend = editSend;
    chat.regenerate = regenerate;
  };
})(window);
