/* SomaTimeline: folds a session's events into what the chat shows (pure data; runs in node too).
 *
 * Each event is applied at most once, by cursor: anything at or below the last
 * applied cursor is ignored, so a reconnect or a reload that replays from the
 * last cursor never duplicates text. assistant.started with restart:true clears
 * the reply's partial text (another worker took the turn over); the terminal
 * event's full message replaces the streamed text.
 *
 * items: [{kind:"user", eventId, parentId, seq, text, attachments}
 *         {kind:"reply", replyTo, model, text, state, error, tools, restarted, finalEventId, feedback,
 *          firstEventId, parentId, approvals, citations}]
 * (citations: the documents the final reply was given, [{index, documentId, collectionId, filename, page,
 * snippet}], shown as numbered references under it that open the document, at the page for a PDF.)
 * (firstEventId/parentId: the reply's first persisted event and its parent, the message it answers:
 * where the reply sits among the message's other replies, see branches.js.)
 * reply.state: "waiting" | "streaming" | "done" | "error" | "cancelled"
 * reply.approvals: tool calls that asked for the reader's approval (tool.approval_requested):
 *   [{callId, tool, args, reason, expiresAt, editable, state: "pending" | "approved" | "denied" |
 *     "expired" | "cancelled", decidedBy}]
 */
(function (root) {
  "use strict";

  var TERMINAL = { "assistant.final": 1, "assistant.error": 1, "assistant.cancelled": 1 };

  function citationsOf(list) {
    if (!Array.isArray(list)) return [];
    return list
      .filter(function (c) {
        return c && typeof c === "object";
      })
      .map(function (c, i) {
        return {
          index: Number(c.index) || i + 1,
          documentId: String(c.document_id || ""),
          collectionId: String(c.collection_id || ""),
          filename: String(c.filename || "document"),
          page: typeof c.page === "number" ? c.page : null,
          snippet: String(c.snippet || ""),
        };
      });
  }

  function Timeline(after) {
    this.items = [];
    this.last = after || 0;
    this.replies = {};
    this.pending = []; // user event ids whose reply has not started, in order
    this.current = null;
  }

  Timeline.isEvent = function (frame) {
    return !!frame && typeof frame.type === "string" && frame.type.indexOf(".") > 0 && "id" in frame;
  };

  Timeline.prototype._reply = function (replyTo) {
    var reply = replyTo ? this.replies[replyTo] : null;
    if (!reply) {
      reply = {
        kind: "reply",
        replyTo: replyTo || null,
        model: "",
        text: "",
        state: "waiting",
        error: null,
        tools: [],
        approvals: [],
        restarted: false,
        finalEventId: null, // the assistant.final's event_id: what feedback is given on
        feedback: null, // "up" | "down" once the reader rated it here
        feedbackNote: null, // {comment, tags} given with the rating
        feedbackDraft: null, // {comment, tags} in the open feedback form (null: closed)
        firstEventId: null,
        parentId: null,
        citations: [],
      };
      if (replyTo) this.replies[replyTo] = reply;
      this.items.push(reply);
    }
    return reply;
  };

  /* The reply an event without reply_to belongs to: the running one, else the oldest waiting turn. */
  Timeline.prototype._currentReply = function () {
    if (this.current) return this.current;
    var replyTo = this.pending.length ? this.pending.shift() : null;
    this.current = this._reply(replyTo);
    return this.current;
  };

  /* The first persisted event of a reply places it among its message's replies. */
  function placeReply(reply, event) {
    if (reply.firstEventId === null && event.event_id && event.type !== "assistant.delta") {
      reply.firstEventId = String(event.event_id);
      reply.parentId = event.parent_id ? String(event.parent_id) : null;
    }
  }

  /* Apply one envelope; returns the item that changed, or null when it was a duplicate or unknown. */
  Timeline.prototype.apply = function (event) {
    var seq = parseInt(event.id, 10);
    if (!(seq > this.last)) return null;
    this.last = seq;
    var changed = this._apply(event, seq);
    if (changed && changed.kind === "reply") placeReply(changed, event);
    return changed;
  };

  Timeline.prototype._apply = function (event, seq) {
    var data = event.data || {};
    var reply;
    switch (event.type) {
      case "user.message":
        var item = {
          kind: "user",
          eventId: event.event_id,
          parentId: event.parent_id ? String(event.parent_id) : null,
          seq: seq,
          text: String(data.message || ""),
          attachments: Array.isArray(data.attachments) ? data.attachments : [],
        };
        this.items.push(item);
        this.pending.push(event.event_id);
        return item;
      case "assistant.started":
        var idx = this.pending.indexOf(data.reply_to);
        if (idx >= 0) this.pending.splice(idx, 1);
        reply = this._reply(data.reply_to);
        if (!data.fallback) {
          // A fallback (another model takes over) keeps what the reply already showed.
          reply.text = "";
          reply.tools = [];
          reply.approvals = [];
        }
        reply.state = "streaming";
        reply.error = null;
        reply.model = String(data.model || "");
        reply.restarted = !!data.restart;
        this.current = reply;
        return reply;
      case "assistant.delta":
        reply = this._currentReply();
        reply.state = "streaming";
        reply.text += String(data.text || "");
        return reply;
      case "tool.start":
      case "tool.result":
        reply = this._currentReply();
        reply.tools.push({ type: event.type, name: String(data.tool_name || ""), status: data.status || "" });
        return reply;
      case "tool.approval_requested":
        reply = this._currentReply();
        reply.approvals.push({
          callId: String(data.call_id || ""),
          tool: String(data.tool_name || ""),
          args: data.args || {},
          reason: String(data.reason || ""),
          expiresAt: String(data.expires_at || ""),
          editable: data.args_editable !== false,
          state: "pending",
          decidedBy: "",
        });
        return reply;
      case "tool.approval_decided":
        reply = this._currentReply();
        reply.approvals.forEach(function (a) {
          if (a.callId === String(data.call_id || "")) {
            a.state = String(data.decision || "denied");
            a.decidedBy = String(data.decided_by || "");
          }
        });
        return reply;
      default:
        if (!TERMINAL[event.type]) return null;
        reply = this._currentReply();
        this.current = null;
        if (event.type === "assistant.final") {
          reply.state = "done";
          reply.finalEventId = event.event_id ? String(event.event_id) : null;
          reply.text = String(data.message || "");
          if (data.model) reply.model = String(data.model);
          reply.citations = citationsOf(data.citations);
        } else if (event.type === "assistant.error") {
          reply.state = "error";
          reply.error = {
            code: String(data.code || "error"),
            message: String(data.message || "The reply failed."),
            retryable: data.retryable !== false,
          };
          if (data.partial) reply.text = String(data.partial);
        } else {
          reply.state = "cancelled";
          reply.approvals.forEach(function (a) {
            if (a.state === "pending") a.state = "cancelled";
          });
          if (typeof data.partial === "string") reply.text = data.partial;
        }
        return reply;
    }
  };

  /* True while a reply runs or a message waits for one. */
  Timeline.prototype.busy = function () {
    return !!this.current || this.pending.length > 0;
  };

  /* Show nothing after the message eventId: its reply is asked for again (regenerate). */
  Timeline.prototype.cutAfterMessage = function (eventId) {
    var user = this.userItem(eventId);
    if (!user) return false;
    this.items = this.items.slice(0, this.items.indexOf(user) + 1);
    var self = this;
    Object.keys(this.replies).forEach(function (k) {
      if (self.items.indexOf(self.replies[k]) < 0) delete self.replies[k];
    });
    this.current = null;
    this.pending = [eventId];
    return true;
  };

  Timeline.prototype.userItem = function (eventId) {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].kind === "user" && this.items[i].eventId === eventId) return this.items[i];
    }
    return null;
  };

  /* Older, complete turns loaded from history go before everything shown. */
  Timeline.prototype.prepend = function (events) {
    var older = new Timeline(0);
    events.forEach(function (e) {
      older.apply(e);
    });
    var self = this;
    Object.keys(older.replies).forEach(function (k) {
      if (!self.replies[k]) self.replies[k] = older.replies[k];
    });
    this.items = older.items.concat(this.items);
    return older.items;
  };

  /* Where a history page may be cut: it starts at a user message and ends after a terminal event.
   * Returns {kept: the page from its first user message on, events: the complete turns to show
   * now, after: the cursor to stream the rest from, startCursor: the oldest kept cursor}. */
  Timeline.trimPage = function (events, atStart) {
    var first = 0;
    if (!atStart) {
      while (first < events.length && events[first].type !== "user.message") first++;
    }
    var kept = events.slice(first);
    var lastTerminal = -1;
    for (var i = kept.length - 1; i >= 0; i--) {
      if (TERMINAL[kept[i].type]) {
        lastTerminal = i;
        break;
      }
    }
    var shown = kept.slice(0, lastTerminal + 1);
    var startCursor = kept.length ? parseInt(kept[0].id, 10) : null;
    var after;
    if (shown.length) after = parseInt(shown[shown.length - 1].id, 10);
    else if (kept.length) after = parseInt(kept[0].id, 10) - 1;
    else after = null;
    return { kept: kept, events: shown, after: after, startCursor: startCursor };
  };

  if (typeof module === "object" && module.exports) module.exports = Timeline;
  else root.SomaTimeline = Timeline;
})(typeof window !== "undefined" ? window : this);
