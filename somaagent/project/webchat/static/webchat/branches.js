/* SomaBranches: which branch of a chat is shown, and where it could switch (pure data; runs in node too).
 *
 * Every persisted event names its parent (parent_id: the event before it on its branch, null for a
 * first message); edits and regenerated replies are children beside the existing ones. The chat
 * shows one branch: the events on it (`on`: event_id -> cursor) and its newest one (`leaf`). A live
 * event belongs on the shown branch when it goes after its leaf; others (another branch's) are only
 * learnt as children, so the `‹ n/m ›` of their siblings counts them.
 */
(function (root) {
  "use strict";

  var ROOT = "root"; // the key of a chat's first messages, as the events API's `siblings` uses

  function Branches() {
    this.kids = {}; // parent event_id (ROOT) -> child event_ids, oldest first
    this.on = new Map();
    this.leaf = null;
  }

  Branches.keyOf = function (parentId) {
    return parentId || ROOT;
  };

  function persisted(event) {
    return event.type !== "assistant.delta";
  }

  /* Remember an event as its parent's child; true when that parent now offers a choice it did not. */
  Branches.prototype.learn = function (event) {
    if (!persisted(event) || !event.event_id) return false;
    var key = Branches.keyOf(event.parent_id);
    var list = this.kids[key] || (this.kids[key] = []);
    if (list.indexOf(event.event_id) >= 0) return false;
    list.push(event.event_id);
    return list.length > 1;
  };

  /* The events API's `siblings` (complete, oldest first) for the parents of a page's events. */
  Branches.prototype.seed = function (siblings) {
    var self = this;
    Object.keys(siblings || {}).forEach(function (key) {
      var known = self.kids[key] || [];
      var list = siblings[key].slice();
      known.forEach(function (id) {
        if (list.indexOf(id) < 0) list.push(id);
      });
      self.kids[key] = list;
    });
  };

  /* Whether a live event belongs on the shown branch (anything does while the chat is empty): one
   * known to be on it, one that goes after its newest event, or a delta of a reply on it. Another
   * child of an event on it (an edit, another reply) starts another branch. */
  Branches.prototype.accepts = function (event) {
    if (this.on.size === 0 || this.on.has(event.event_id)) return true;
    if (!persisted(event)) return this.on.has(event.parent_id);
    return (event.parent_id || null) === this.leaf;
  };

  /* The event is shown: it is on the branch now (deltas are not events of the tree). */
  Branches.prototype.take = function (event) {
    if (!persisted(event) || !event.event_id) return;
    var seq = parseInt(event.id, 10);
    this.on.set(event.event_id, seq);
    if (this.leaf === null || seq >= this.on.get(this.leaf)) this.leaf = event.event_id;
  };

  /* The branch shown now ends at eventId (what came after it on the branch is no longer shown). */
  Branches.prototype.cutAfter = function (eventId) {
    var at = this.on.get(eventId);
    if (at === undefined) return;
    var self = this;
    Array.from(this.on.keys()).forEach(function (id) {
      if (self.on.get(id) > at) self.on.delete(id);
    });
    this.leaf = eventId;
  };

  /* For an event shown with parent parentId: {index, count, prev, next} when it has siblings, else null. */
  Branches.prototype.choice = function (parentId, eventId) {
    var list = this.kids[Branches.keyOf(parentId)] || [];
    var i = list.indexOf(eventId);
    if (list.length < 2 || i < 0) return null;
    return { index: i + 1, count: list.length, prev: list[i - 1] || null, next: list[i + 1] || null };
  };

  if (typeof module === "object" && module.exports) module.exports = Branches;
  else root.SomaBranches = Branches;
})(typeof window !== "undefined" ? window : this);
