/* SomaDocStatus: what the Collections panel says about a collection and a document, and which
   files it refuses before uploading them (the API checks again: the bytes decide the type there).
   No DOM: tested in node (tests/webchat/test_docstatus_js.py). */
(function (root) {
  "use strict";

  var FINAL = { ready: true, failed: true };
  var TYPES = "PDF, DOCX, Markdown, HTML, plain text or CSV";

  /* ready and failed are final; queued and processing are still to be read (the panel polls). */
  function isFinal(doc) {
    return FINAL[doc.status] === true;
  }

  function anyPending(docs) {
    return docs.some(function (d) {
      return !isFinal(d);
    });
  }

  /* "queued", "processing 40%", "ready, 3 pages, keywords only", "failed: <the reason>". */
  function statusText(doc) {
    if (doc.status === "processing") return "processing" + (doc.progress ? " " + doc.progress + "%" : "");
    if (doc.status === "failed") return "failed: " + (doc.reason || "no reason given");
    if (doc.status !== "ready") return doc.status;
    var text = "ready";
    if (doc.pages) text += ", " + doc.pages + (doc.pages === 1 ? " page" : " pages");
    // its passages could not be embedded: it is found by its words only (embedding_reason says why)
    if (doc.embedding_status === "failed") text += ", keywords only";
    return text;
  }

  function extensionOf(name) {
    var dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  }

  /* Why a file is refused before it is sent, or "" to send it.
     rules: {maxBytes, extensions: ["pdf", ...], formatBytes(n) -> text} */
  function checkFile(file, rules) {
    var ext = extensionOf(file.name);
    if (rules.extensions.indexOf(ext) < 0) {
      var what = ext ? "." + ext + " files" : "Files without an extension";
      return what + " are not accepted: upload a " + TYPES + " file.";
    }
    if (file.size > rules.maxBytes) {
      var size = rules.formatBytes(file.size);
      return "The file is " + size + ", over the " + rules.formatBytes(rules.maxBytes) + " limit.";
    }
    if (!file.size) return "The file is empty.";
    return "";
  }

  /* Who a collection is for, as the panel shows it; me: the signed-in user's name. */
  function kindText(c, me) {
    if (c.kind === "shared") return "shared with your tenant";
    if (c.kind === "chat") return "one chat's files";
    return c.owner === me || !c.owner ? "private: yours alone" : "private to " + c.owner;
  }

  /* Whether to offer upload and delete (the API decides: a refusal is shown). Shared
     collections are changed by tenant admins; a private one by whoever sees it. */
  function mayManage(c, isTenantAdmin) {
    return c.kind !== "shared" || isTenantAdmin === true;
  }

  /* The panel lists shared and private collections; a chat's own files are shown in that chat. */
  function panelCollections(collections) {
    return collections.filter(function (c) {
      return c.kind !== "chat";
    });
  }

  var SomaDocStatus = {
    isFinal: isFinal,
    anyPending: anyPending,
    statusText: statusText,
    extensionOf: extensionOf,
    checkFile: checkFile,
    kindText: kindText,
    mayManage: mayManage,
    panelCollections: panelCollections,
  };
  if (typeof module === "object" && module.exports) module.exports = SomaDocStatus;
  else root.SomaDocStatus = SomaDocStatus;
})(typeof window !== "undefined" ? window : this);
