/* SomaUploads: files picked for the next message, uploaded at once to POST /v1/attachments. */
(function (root) {
  "use strict";

  var V = root.SomaView;
  var Http = root.SomaHttp;

  /* opts: {list: <ul>, maxBytes, sessionId() -> id or null, onRemove()} */
  function SomaUploads(opts) {
    this.opts = opts;
    this.items = [];
  }

  SomaUploads.prototype.render = function () {
    var self = this;
    this.opts.list.replaceChildren.apply(
      this.opts.list,
      this.items.map(function (u) {
        return V.uploadChip(u, function (gone) {
          self.items = self.items.filter(function (x) {
            return x !== gone;
          });
          self.render();
          self.opts.onRemove();
        });
      })
    );
  };

  SomaUploads.prototype.add = function (files) {
    var self = this;
    Array.prototype.forEach.call(files, function (file) {
      var upload = { name: file.name, size: file.size, state: "uploading", id: null, error: "" };
      self.items.push(upload);
      if (file.size > self.opts.maxBytes) {
        upload.state = "failed";
        upload.error = "larger than " + V.formatBytes(self.opts.maxBytes);
        return;
      }
      var form = new FormData();
      form.append("file", file);
      var sid = self.opts.sessionId();
      if (sid) form.append("session_id", sid);
      Http.api("POST", "/v1/attachments", form)
        .then(function (res) {
          if (!res.ok) {
            upload.state = "failed";
            upload.error = Http.errorText(res);
          } else {
            upload.id = res.data.attachment_id;
            upload.state = res.data.status === "clean" ? "ready" : "quarantined";
          }
        })
        .catch(function () {
          upload.state = "failed";
          upload.error = "network error";
        })
        .finally(function () {
          self.render();
        });
    });
    this.render();
  };

  SomaUploads.prototype.busy = function () {
    return this.items.some(function (u) {
      return u.state === "uploading";
    });
  };

  /* Ids of the clean files; take() also clears the list (restore() puts it back on failure). */
  SomaUploads.prototype.readyIds = function () {
    return this.items
      .filter(function (u) {
        return u.state === "ready";
      })
      .map(function (u) {
        return u.id;
      });
  };
  SomaUploads.prototype.take = function () {
    var taken = this.items;
    this.items = [];
    this.render();
    return taken;
  };
  SomaUploads.prototype.restore = function (items) {
    this.items = items;
    this.render();
  };

  root.SomaUploads = SomaUploads;
})(window);
