/* SomaCollections: the "Collections" panel: the shared and private document collections you can
   see (GET /v1/collections), each with its documents and their status, read again every
   POLL_MS while any of them is queued or processing; a form to make a private collection (or a
   shared one, for tenant admins); delete a collection or a document; upload files into one by
   drag and drop or a file picker, each with its progress bar (XMLHttpRequest upload progress).
   The API decides who may do what: a refusal is shown with its message. */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var V = root.SomaView;
  var S = root.SomaDocStatus;
  var CV = root.SomaCollectionView;
  var POLL_MS = 1500;
  var $ = function (id) {
    return document.getElementById(id);
  };

  /* cfg: the page's config ({user, tenantAdmin, documents: {max_bytes, extensions}}) */
  function SomaCollections(cfg) {
    this.cfg = cfg;
    this.dialog = $("collections");
    this.sections = {}; // collection id -> {c, el, docs, empty, uploads, documents, seq}
    this.uploads = {}; // collection id -> upload rows, kept while the list is built again
    this.timer = null;
    this.rules = {
      maxBytes: cfg.documents.max_bytes,
      extensions: cfg.documents.extensions,
      formatBytes: V.formatBytes,
    };
  }

  SomaCollections.prototype.open = function () {
    if (this.dialog.showModal) this.dialog.showModal();
    else this.dialog.setAttribute("open", "");
    return this.load();
  };

  SomaCollections.prototype.close = function () {
    if (this.dialog.close) this.dialog.close();
    else this.dialog.removeAttribute("open");
    this.stop();
  };

  SomaCollections.prototype.isOpen = function () {
    return this.dialog.hasAttribute("open");
  };

  SomaCollections.prototype.stop = function () {
    clearTimeout(this.timer);
    this.timer = null;
  };

  SomaCollections.prototype.say = function (text) {
    $("collection-error").textContent = text || "";
  };

  SomaCollections.prototype.load = function () {
    var self = this;
    return Http.api("GET", "/v1/collections").then(function (res) {
      if (!res.ok) return self.say(Http.errorText(res));
      var collections = S.panelCollections(res.data.collections);
      self.render(collections);
      return self.refresh(Object.keys(self.sections));
    });
  };

  SomaCollections.prototype.render = function (collections) {
    var self = this;
    this.sections = {};
    var list = $("collection-list");
    list.replaceChildren.apply(
      list,
      collections.map(function (c) {
        return self.section(c).el;
      })
    );
    $("collections-empty").hidden = collections.length > 0;
  };

  SomaCollections.prototype.section = function (c) {
    var self = this;
    var cid = c.collection_id;
    var sec = CV.section(c, {
      kindText: S.kindText(c, this.cfg.user),
      canManage: S.mayManage(c, this.cfg.tenantAdmin),
      accept: this.cfg.documents.extensions
        .map(function (ext) {
          return "." + ext;
        })
        .join(","),
      onDelete: function () {
        self.removeCollection(c);
      },
      onFiles: function (files) {
        self.upload(c, files);
      },
    });
    sec.c = c;
    sec.documents = [];
    sec.seq = 0;
    (this.uploads[cid] || []).forEach(function (row) {
      sec.uploads.appendChild(row.el);
    });
    this.sections[cid] = sec;
    return sec;
  };

  /* Reads these collections' documents again, then polls the ones still being read. */
  SomaCollections.prototype.refresh = function (ids) {
    var self = this;
    return Promise.all(
      ids.map(function (cid) {
        var sec = self.sections[cid];
        if (!sec) return null;
        var seq = ++sec.seq; // an older answer arriving late is dropped
        return Http.api("GET", "/v1/collections/" + encodeURIComponent(cid) + "/documents").then(function (res) {
          if (seq !== sec.seq || self.sections[cid] !== sec) return;
          if (!res.ok) return self.say(Http.errorText(res));
          sec.documents = res.data.documents;
          CV.renderDocuments(sec, cid, sec.documents, {
            canManage: S.mayManage(sec.c, self.cfg.tenantAdmin),
            onDelete: function (d) {
              self.removeDocument(sec.c, d);
            },
          });
        });
      })
    ).then(function () {
      self.schedule();
    });
  };

  SomaCollections.prototype.schedule = function () {
    var self = this;
    this.stop();
    if (!this.isOpen()) return;
    var pending = Object.keys(this.sections).filter(function (cid) {
      return S.anyPending(self.sections[cid].documents);
    });
    if (!pending.length) return;
    this.timer = setTimeout(function () {
      self.timer = null;
      self.refresh(pending);
    }, POLL_MS);
  };

  SomaCollections.prototype.create = function () {
    var self = this;
    var body = {
      name: $("collection-name").value.trim(),
      kind: this.cfg.tenantAdmin && $("collection-shared").checked ? "shared" : "private",
    };
    return Http.api("POST", "/v1/collections", body).then(function (res) {
      if (!res.ok) return self.say(Http.errorText(res));
      self.say("");
      $("collection-form").reset();
      return self.load();
    });
  };

  SomaCollections.prototype.removeCollection = function (c) {
    var self = this;
    if (!root.confirm("Delete the collection “" + c.name + "” and all of its documents?")) return null;
    return Http.api("DELETE", "/v1/collections/" + encodeURIComponent(c.collection_id)).then(function (res) {
      self.say(res.ok ? "" : Http.errorText(res));
      if (res.ok) delete self.uploads[c.collection_id];
      return self.load(); // refused: the list as it is now (it may have gone meanwhile)
    });
  };

  SomaCollections.prototype.removeDocument = function (c, d) {
    var self = this;
    if (!root.confirm("Delete “" + d.filename + "” from “" + c.name + "”?")) return null;
    var url = "/v1/collections/" + encodeURIComponent(c.collection_id) + "/documents/" + encodeURIComponent(d.document_id);
    return Http.api("DELETE", url).then(function (res) {
      self.say(res.ok ? "" : Http.errorText(res));
      return self.refresh([c.collection_id]);
    });
  };

  /* Each file is checked here (type, size), then sent with its own progress bar; once the server
     has it, its row goes and the document shows in the list with its status. */
  SomaCollections.prototype.upload = function (c, files) {
    var self = this;
    var cid = c.collection_id;
    Array.prototype.forEach.call(files, function (file) {
      var item = { name: file.name, state: "uploading", percent: 0, error: "" };
      var row = CV.uploadRow(item, function () {
        self.dropUpload(cid, row);
      });
      (self.uploads[cid] = self.uploads[cid] || []).push(row);
      var sec = self.sections[cid];
      if (sec) sec.uploads.appendChild(row.el);
      var refused = S.checkFile(file, self.rules);
      if (refused) {
        item.state = "failed";
        item.error = refused;
        return row.update();
      }
      var form = new FormData();
      form.append("file", file);
      var url = "/v1/collections/" + encodeURIComponent(cid) + "/documents";
      Http.upload(url, form, function (percent) {
        item.percent = percent;
        row.update();
      })
        .then(function (res) {
          if (!res.ok) {
            item.state = "failed";
            item.error = Http.errorText(res);
            return;
          }
          item.percent = 100;
          item.state = res.status === 200 ? "duplicate" : "sent";
          return self.refresh([cid]).then(function () {
            if (item.state === "sent") self.dropUpload(cid, row);
          });
        })
        .catch(function (err) {
          item.state = "failed";
          item.error = "the upload did not finish (" + ((err && err.message) || "network error") + ")";
        })
        .finally(function () {
          row.update();
        });
    });
  };

  SomaCollections.prototype.dropUpload = function (cid, row) {
    this.uploads[cid] = (this.uploads[cid] || []).filter(function (r) {
      return r !== row;
    });
    row.el.remove();
  };

  SomaCollections.prototype.bind = function () {
    var self = this;
    $("collection-shared-row").hidden = !this.cfg.tenantAdmin;
    $("open-collections").addEventListener("click", function () {
      self.open();
    });
    $("close-collections").addEventListener("click", function () {
      self.close();
    });
    this.dialog.addEventListener("close", function () {
      self.stop();
    });
    // a file dropped beside a collection is ignored here, not opened by the browser instead of the chat
    this.dialog.addEventListener("dragover", function (ev) {
      if (CV.hasFiles(ev) && !ev.defaultPrevented) {
        ev.preventDefault();
        ev.dataTransfer.dropEffect = "none";
      }
    });
    this.dialog.addEventListener("drop", function (ev) {
      ev.preventDefault();
    });
    $("collection-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      self.create();
    });
  };

  root.SomaCollections = SomaCollections;
  document.addEventListener("DOMContentLoaded", function () {
    if (!$("collections")) return;
    var cfg = JSON.parse($("chat-config").textContent);
    new SomaCollections(cfg).bind();
  });
})(window);
