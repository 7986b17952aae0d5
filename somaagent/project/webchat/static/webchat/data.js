/* SomaData: the "Your data" panel: your share links (open, revoke: a revoked link answers "not
   found"), the open chat and all your chats exported as JSON (lossless: every branch, attachments'
   metadata, your feedback) or Markdown, and an import of a SomaAgent export or
   ChatGPT's conversations.json as new chats (a bad file is refused whole: nothing is created). */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var h = root.SomaView.h;
  var $ = function (id) {
    return document.getElementById(id);
  };

  function say(text, isError) {
    var status = $("data-status");
    status.textContent = text || "";
    status.className = isError ? "composer-error" : "muted";
  }

  function linkItem(link) {
    var title = link.session_title || "Untitled chat";
    var revoke = h("button", { type: "button", className: "link", "aria-label": "Revoke the link to " + title, text: "Revoke" });
    revoke.addEventListener("click", function () {
      Http.api("DELETE", "/v1/shares/" + encodeURIComponent(link.id)).then(function (res) {
        if (res.status !== 204 && res.status !== 404) return say(Http.errorText(res), true);
        say("Link revoked: it now answers “not found”.");
        loadLinks();
      });
    });
    return h("li", { className: "share-link", "data-share-id": link.id }, [
      h("strong", { text: title }),
      " ",
      h("a", { href: link.url, target: "_blank", rel: "noopener noreferrer", text: link.url }),
      h("span", { className: "muted", text: " · made " + new Date(link.created_at).toLocaleString() + " " }),
      revoke,
    ]);
  }

  function loadLinks() {
    return Http.api("GET", "/v1/shares").then(function (res) {
      var list = $("share-list");
      if (!res.ok) {
        list.replaceChildren(h("li", { className: "muted", text: Http.errorText(res) }));
        return;
      }
      $("shares-empty").hidden = res.data.shares.length > 0;
      list.replaceChildren.apply(list, res.data.shares.map(linkItem));
    });
  }

  function importFile(file, onImported) {
    say("Importing " + file.name + "…");
    return file.text().then(function (text) {
      var doc;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        return say("That file is not JSON: nothing was imported.", true);
      }
      return Http.api("POST", "/v1/import", doc).then(function (res) {
        if (!res.ok) return say(Http.errorText(res) + " Nothing was imported.", true);
        var n = res.data.sessions.length;
        say("Imported " + n + (n === 1 ? " chat" : " chats") + " as new chats.");
        onImported();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("data")) return;
    $("open-data").addEventListener("click", function () {
      var dialog = $("data");
      say("");
      var open = root.somaChat && root.somaChat.state.sessionId; // the chat shown, if any
      $("export-this").hidden = !open;
      if (open) {
        var base = "/v1/sessions/" + encodeURIComponent(open) + "/export";
        $("export-chat-json").href = base + "?format=json";
        $("export-chat-markdown").href = base + "?format=markdown";
      }
      if (dialog.showModal) dialog.showModal();
      else dialog.setAttribute("open", "");
      loadLinks();
    });
    $("close-data").addEventListener("click", function () {
      var dialog = $("data");
      if (dialog.close) dialog.close();
      else dialog.removeAttribute("open");
    });
    $("import-input").addEventListener("change", function (ev) {
      var file = ev.target.files[0];
      ev.target.value = "";
      if (!file) return;
      importFile(file, function () {
        if (root.somaChat && root.somaChat.reloadChats) root.somaChat.reloadChats();
      });
    });
  });
})(window);
