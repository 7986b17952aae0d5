/* SomaChatFiles: documents added to the open chat (drag and drop, or "Add documents"), read by
 * the server in the background; each file shows its status until it is ready or failed.
 * POST /v1/chat-files gives the chat's collection, then each file goes to its documents (with a
 * progress bar while it is sent) and is polled (GET …/documents/{id}) while it is queued or
 * processing. */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var POLL_MS = 1000;
  var LABEL = {
    uploading: "uploading…",
    queued: "queued",
    processing: "reading…",
    ready: "ready",
    failed: "failed",
  };

  /* opts: {list: <ul>, sessionId() -> id or null} */
  function SomaChatFiles(opts) {
    this.opts = opts;
    this.items = [];
    this.collections = {}; // session id -> collection id
  }

  SomaChatFiles.prototype.reset = function () {
    this.items = [];
    this.render();
  };

  SomaChatFiles.prototype.render = function () {
    var doc = this.opts.list.ownerDocument;
    this.opts.list.replaceChildren.apply(
      this.opts.list,
      this.items.map(function (f) {
        var li = doc.createElement("li");
        li.className = "chip doc-file";
        li.setAttribute("data-state", f.state);
        var text = f.name + " \u2014 " + (LABEL[f.state] || f.state);
        if (f.state === "uploading" && f.sent) text += " " + f.sent + "%";
        if (f.state === "processing" && f.progress) text += " " + f.progress + "%";
        if (f.state === "failed" && f.error) text += ": " + f.error;
        if (f.state === "ready" && f.pages) text += " (" + f.pages + (f.pages === 1 ? " page)" : " pages)");
        // ready, but its passages could not be embedded: it is searched by its words only
        if (f.state === "ready" && f.embedding === "failed") text += ", by keywords only";
        if (f.embedding === "failed") li.title = f.embeddingReason || "";
        li.textContent = text;
        if (f.state === "uploading") {
          // the upload's own progress (XMLHttpRequest), then the server's while it reads the file
          var bar = doc.createElement("progress");
          bar.max = 100;
          bar.value = f.sent || 0;
          bar.setAttribute("aria-label", "Uploading " + f.name);
          li.appendChild(bar);
        }
        return li;
      })
    );
    this.opts.list.hidden = this.items.length === 0;
  };

  SomaChatFiles.prototype._collection = function (sid) {
    var self = this;
    if (this.collections[sid]) return Promise.resolve(this.collections[sid]);
    return Http.api("POST", "/v1/chat-files", { session_id: sid }).then(function (res) {
      if (!res.ok) throw new Error(Http.errorText(res));
      self.collections[sid] = res.data.collection_id;
      return res.data.collection_id;
    });
  };

  SomaChatFiles.prototype._update = function (f, data) {
    f.state = data.status;
    f.error = data.reason || "";
    f.pages = data.pages || 0;
    f.embedding = data.embedding_status || "off";
    f.embeddingReason = data.embedding_reason || "";
    f.progress = data.progress || 0;
    f.documentId = data.document_id;
  };

  SomaChatFiles.prototype._poll = function (f, cid) {
    var self = this;
    setTimeout(function () {
      if (self.items.indexOf(f) < 0) return; // another chat opened meanwhile
      Http.api("GET", "/v1/collections/" + cid + "/documents/" + f.documentId).then(function (res) {
        if (res.ok) self._update(f, res.data);
        self.render();
        if (!res.ok || f.state === "queued" || f.state === "processing") self._poll(f, cid);
      });
    }, POLL_MS);
  };

  SomaChatFiles.prototype.add = function (files) {
    var self = this;
    var sid = this.opts.sessionId();
    if (!sid) return false;
    Array.prototype.forEach.call(files, function (file) {
      var f = { name: file.name, state: "uploading", sent: 0, error: "", pages: 0, progress: 0, documentId: null };
      self.items.push(f);
      self
        ._collection(sid)
        .then(function (cid) {
          var form = new FormData();
          form.append("file", file);
          var url = "/v1/collections/" + cid + "/documents";
          return Http.upload(url, form, function (percent) {
            f.sent = percent;
            self.render();
          }).then(function (res) {
            if (!res.ok) throw new Error(Http.errorText(res));
            self._update(f, res.data);
            if (f.state === "queued" || f.state === "processing") self._poll(f, cid);
          });
        })
        .catch(function (err) {
          f.state = "failed";
          f.error = (err && err.message) || "network error";
        })
        .finally(function () {
          self.render();
        });
    });
    this.render();
    return true;
  };

  root.SomaChatFiles = SomaChatFiles;
})(window);
