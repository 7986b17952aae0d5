/* SomaChatReplies: what you do to a reply besides Retry and regenerate (part of the web chat;
 * chat.js installs it).
 *
 * Thumbs up or down on a finished reply, the comment and tags of a rating, what you rated before
 * in this chat (loaded when it opens, so the thumbs show it after a reload), and the answer to a
 * tool call that waits for approval.
 *
 * SomaChatReplies(chat) adds to `chat`: loadFeedback, rate, feedbackOpen, feedbackCancel,
 * feedbackSave, answerApproval.
 */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var api = Http.api;
  var errorText = Http.errorText;

  root.SomaChatReplies = function (chat) {
    var state = chat.state;

    /* What you rated before in this chat, so the thumbs show it after a reload. */
    function loadFeedback(gen) {
      api("GET", "/v1/sessions/" + state.sessionId + "/feedback").then(function (res) {
        if (gen !== state.generation || !res.ok) return;
        res.data.feedback.forEach(function (f) {
          state.feedback[f.event_id] = { rating: f.rating, comment: f.comment, tags: f.tags };
        });
        state.timeline.items.forEach(function (item) {
          if (item.kind === "reply" && item.finalEventId && state.feedback[item.finalEventId]) chat.queueRender(item);
        });
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
        if (!res.ok) return chat.setStatus(errorText(res));
        feedbackStored(reply, undo ? null : res.data);
        if (!undo) reply.feedbackDraft = { comment: comment, tags: [] };
        chat.queueRender(reply);
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
      chat.queueRender(reply);
    }

    function feedbackCancel(reply) {
      reply.feedbackDraft = null;
      chat.queueRender(reply);
    }

    /* The comment and tags of the rating given, saved with it. */
    function feedbackSave(reply, comment, tags) {
      if (!state.sessionId || !reply.finalEventId || !reply.feedback) return;
      var url = "/v1/sessions/" + state.sessionId + "/events/" + reply.finalEventId + "/feedback";
      api("PUT", url, { rating: reply.feedback, comment: comment, tags: tags }).then(function (res) {
        if (!res.ok) return chat.setStatus(errorText(res));
        feedbackStored(reply, res.data);
        chat.queueRender(reply);
      });
    }

    /* Answer a tool call that waits for approval (the stream's tool.approval_decided confirms it). */
    function answerApproval(reply, approval, decision, always) {
      if (!state.sessionId || approval.state !== "pending") return;
      var body = { decision: decision };
      if (always) body.always = true;
      var url = "/v1/sessions/" + state.sessionId + "/approvals/" + encodeURIComponent(approval.callId);
      api("POST", url, body).then(function (res) {
        if (!res.ok) return chat.setStatus(errorText(res));
        approval.state = res.data.status;
        approval.decidedBy = res.data.decided_by || "";
        chat.queueRender(reply);
      });
    }

    chat.loadFeedback = loadFeedback;
    chat.rate = rate;
    chat.feedbackOpen = feedbackOpen;
    chat.feedbackCancel = feedbackCancel;
    chat.feedbackSave = feedbackSave;
    chat.answerApproval = answerApproval;
  };
})(window);
