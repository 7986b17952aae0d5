/* SomaSidebar: the list of the user's chats (paged), and the slide-over on narrow screens. */
(function (root) {
  "use strict";

  var V = root.SomaView;
  var Http = root.SomaHttp;
  var $ = function (id) {
    return document.getElementById(id);
  };

  /* opts: {currentId() -> id or null, onOpen(id)} */
  function SomaSidebar(opts) {
    this.opts = opts;
    this.sessions = [];
    this.nextOffset = null;
  }

  SomaSidebar.prototype.load = function (reset) {
    var self = this;
    var offset = reset ? 0 : this.nextOffset || 0;
    return Http.api("GET", "/v1/sessions?limit=30&offset=" + offset).then(function (res) {
      if (!res.ok) return;
      self.sessions = reset ? res.data.sessions : self.sessions.concat(res.data.sessions);
      self.nextOffset = res.data.next_offset;
      self.render();
    });
  };

  SomaSidebar.prototype.render = function () {
    var self = this;
    var current = this.opts.currentId();
    var list = $("session-list");
    list.replaceChildren.apply(
      list,
      this.sessions.map(function (s) {
        return V.sessionItem(s, s.session_id === current, function (id) {
          self.opts.onOpen(id);
          self.close();
        });
      })
    );
    $("more-sessions").hidden = this.nextOffset === null || this.nextOffset === undefined;
  };

  /* Search your chats: results replace the list until the box is emptied; "More results" pages on. */
  SomaSidebar.prototype.search = function (query, offset) {
    var self = this;
    var results = $("search-results");
    query = query.trim();
    offset = offset || 0;
    this.query = query;
    if (!query) {
      results.hidden = true;
      results.replaceChildren();
      return Promise.resolve();
    }
    var url = "/v1/search?limit=20&offset=" + offset + "&q=" + encodeURIComponent(query);
    return Http.api("GET", url).then(function (res) {
      if (self.query !== query) return; // a later search has started
      results.hidden = false;
      var more = results.querySelector("li.more");
      if (more) more.remove();
      if (!res.ok) {
        results.replaceChildren(V.h("li", { className: "muted", text: Http.errorText(res) }));
        return;
      }
      if (!res.data.results.length && !offset) {
        results.replaceChildren(V.h("li", { className: "muted", text: "Nothing found." }));
        return;
      }
      var hits = res.data.results.map(function (hit) {
        return V.searchHit(hit, function (id, eventId) {
          self.opts.onOpen(id, eventId);
          self.close();
        });
      });
      if (offset) hits.forEach(function (li) { results.appendChild(li); });
      else results.replaceChildren.apply(results, hits);
      if (res.data.next_offset !== null && res.data.next_offset !== undefined) {
        var button = V.h("button", { type: "button", className: "link", text: "More results" });
        button.addEventListener("click", function () {
          self.search(query, res.data.next_offset);
        });
        results.appendChild(V.h("li", { className: "more" }, [button]));
      }
    });
  };

  SomaSidebar.prototype.open = function () {
    document.body.classList.add("sidebar-open");
    $("open-sidebar").setAttribute("aria-expanded", "true");
    $("new-chat").focus();
  };

  SomaSidebar.prototype.close = function () {
    if (!document.body.classList.contains("sidebar-open")) return false;
    document.body.classList.remove("sidebar-open");
    $("open-sidebar").setAttribute("aria-expanded", "false");
    return true;
  };

  root.SomaSidebar = SomaSidebar;
})(window);
