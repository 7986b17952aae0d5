/* SomaCollectionView: the Collections panel's DOM: one collection (its documents, its uploads,
   a drop zone and a file picker) and an upload's row with its progress bar. Names and reasons go
   in as text (SomaView.h); the panel (collections.js) holds the state and calls the API. */
(function (root) {
  "use strict";

  var h = root.SomaView.h;
  var S = root.SomaDocStatus;

  function documentUrl(cid, did) {
    return "/v1/collections/" + encodeURIComponent(cid) + "/documents/" + encodeURIComponent(did);
  }

  function hasFiles(ev) {
    return !!ev.dataTransfer && Array.prototype.indexOf.call(ev.dataTransfer.types, "Files") >= 0;
  }

  /* Files dropped anywhere on `el` go to onFiles; it is marked while they are dragged over it. */
  function dropTarget(el, onFiles) {
    el.addEventListener("dragover", function (ev) {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
      el.classList.add("drag-over");
    });
    el.addEventListener("dragleave", function (ev) {
      if (!el.contains(ev.relatedTarget)) el.classList.remove("drag-over");
    });
    el.addEventListener("drop", function (ev) {
      el.classList.remove("drag-over");
      if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
      ev.preventDefault();
      ev.stopPropagation();
      onFiles(ev.dataTransfer.files);
    });
  }

  /* One collection. opts: {kindText, canManage, accept, onDelete(), onFiles(files)}.
     Returns {el, docs, empty, uploads}: the lists its documents and uploads are put in. */
  function section(c, opts) {
    var docs = h("ul", { className: "doc-list", "aria-label": "Documents in " + c.name });
    var empty = h("p", { className: "muted doc-empty", text: "No documents yet." });
    var uploads = h("ul", { className: "upload-list", "aria-label": "Uploads to " + c.name });
    var head = [h("strong", { text: c.name }), h("span", { className: "muted", text: " · " + opts.kindText })];
    var parts = [h("div", { className: "collection-head" }, head)];
    if (c.description) parts.push(h("p", { className: "muted", text: c.description }));
    parts.push(docs, empty, uploads);
    if (opts.canManage) {
      var inputId = "collection-files-" + c.collection_id;
      var input = h("input", { type: "file", id: inputId, className: "visually-hidden", multiple: "", accept: opts.accept });
      input.addEventListener("change", function () {
        opts.onFiles(input.files);
        input.value = "";
      });
      var pick = h("label", { for: inputId, className: "button", text: "Add files" });
      var remove = h("button", { type: "button", "aria-label": "Delete the collection " + c.name, text: "Delete collection" });
      remove.addEventListener("click", opts.onDelete);
      parts.push(
        h("div", { className: "drop-zone" }, [
          h("span", { className: "muted", text: "Drop files here or " }),
          input,
          pick,
          h("span", { className: "spacer" }),
          remove,
        ])
      );
    }
    var el = h("li", { className: "collection", "data-collection-id": c.collection_id }, parts);
    if (opts.canManage) dropTarget(el, opts.onFiles);
    return { el: el, docs: docs, empty: empty, uploads: uploads };
  }

  /* A document: its name opens the file; its status, a progress bar while it is read, Delete. */
  function documentRow(cid, d, opts) {
    var link = h("a", {
      href: documentUrl(cid, d.document_id) + "/file",
      target: "_blank",
      rel: "noopener",
      text: d.filename,
    });
    var status = h("span", { className: "doc-status", text: " — " + S.statusText(d) });
    if (d.embedding_status === "failed") status.title = d.embedding_reason || "";
    var parts = [link, status];
    if (d.status === "processing") {
      parts.push(h("progress", { max: "100", value: String(d.progress || 0), "aria-label": "Reading " + d.filename }));
    }
    if (opts.canManage) {
      var remove = h("button", { type: "button", className: "link", "aria-label": "Delete " + d.filename, text: "Delete" });
      remove.addEventListener("click", function () {
        opts.onDelete(d);
      });
      parts.push(remove);
    }
    return h("li", { className: "doc", "data-state": d.status, "data-document-id": d.document_id }, parts);
  }

  function renderDocuments(sec, cid, documents, opts) {
    sec.docs.replaceChildren.apply(
      sec.docs,
      documents.map(function (d) {
        return documentRow(cid, d, opts);
      })
    );
    sec.empty.hidden = documents.length > 0;
  }

  var UPLOAD_TEXT = {
    uploading: "uploading",
    sent: "uploaded",
    duplicate: "already in this collection (the same file)",
    failed: "not uploaded",
  };

  /* An upload: {name, state: uploading | sent | duplicate | failed, percent, error}; its row keeps a
     progress bar while it is sent. update() shows the item's state again; onDismiss removes it. */
  function uploadRow(item, onDismiss) {
    var bar = h("progress", { max: "100", value: "0", "aria-label": "Uploading " + item.name });
    var text = h("span", { className: "upload-status" });
    var dismiss = h("button", { type: "button", className: "link", "aria-label": "Dismiss " + item.name, text: "Dismiss" });
    dismiss.addEventListener("click", onDismiss);
    var el = h("li", { className: "upload" }, [h("span", { text: item.name }), text, bar, dismiss]);
    function update() {
      el.setAttribute("data-state", item.state);
      bar.value = item.percent || 0;
      bar.hidden = item.state !== "uploading";
      dismiss.hidden = item.state === "uploading" || item.state === "sent";
      var said = " — " + UPLOAD_TEXT[item.state];
      if (item.state === "uploading") said += " " + (item.percent || 0) + "%";
      if (item.state === "failed") said += ": " + item.error;
      text.textContent = said;
    }
    update();
    return { el: el, update: update };
  }

  root.SomaCollectionView = {
    section: section,
    renderDocuments: renderDocuments,
    uploadRow: uploadRow,
    hasFiles: hasFiles,
  };
})(window);
