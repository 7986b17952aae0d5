/* SomaChatHead: the open chat's header (part of the web chat; chat.js installs it): its title
 * (also the page's), Rename, Delete, and Share (a read-only link to the chat as it is now).
 *
 * SomaChatHead(chat) adds to `chat`: setTitle, startRename, endRename, saveRename, deleteSession,
 * share.
 */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var api = Http.api;
  var errorText = Http.errorText;
  var $ = function (id) {
    return document.getElementById(id);
  };

  root.SomaChatHead = function (chat) {
    var state = chat.state;

    function setTitle(title) {
      $("chat-title").textContent = title || (state.sessionId ? "Untitled chat" : "New chat");
      document.title = (title ? title + " · " : "") + "SomaAgent";
    }

    /* A read-only link to the chat as it is now; shown, and copied when the browser allows. */
    function share() {
      if (!state.sessionId) return;
      api("POST", "/v1/sessions/" + state.sessionId + "/shares", {}).then(function (res) {
        if (!res.ok) return chat.setStatus(errorText(res));
        var url = res.data.url;
        chat.setStatus("Read-only link to this chat as it is now: " + url);
        if (navigator.clipboard) navigator.clipboard.writeText(url).catch(function () {});
      });
    }

    function startRename() {
      $("rename-input").value = $("chat-title").textContent;
      $("rename-form").hidden = false;
      $("chat-title").hidden = true;
      $("rename-input").focus();
      $("rename-input").select();
    }
    function endRename() {
      $("rename-form").hidden = true;
      $("chat-title").hidden = false;
      $("chat-title").focus();
    }
    function saveRename(ev) {
      ev.preventDefault();
      var title = $("rename-input").value.trim();
      if (!title) return;
      api("PATCH", "/v1/sessions/" + state.sessionId, { title: title }).then(function (res) {
        if (!res.ok) return chat.setStatus(errorText(res));
        setTitle(res.data.title);
        endRename();
        chat.sidebar.load(true);
      });
    }
    function deleteSession() {
      if (!window.confirm("Delete this chat and all its messages?")) return;
      api("DELETE", "/v1/sessions/" + state.sessionId).then(function (res) {
        if (res.status !== 204 && res.status !== 404) return chat.setStatus(errorText(res));
        chat.newChat(true);
        chat.sidebar.load(true);
        chat.setStatus("Chat deleted.");
      });
    }

    chat.setTitle = setTitle;
    chat.share = share;
    chat.startRename = startRename;
    chat.endRename = endRename;
    chat.saveRename = saveRename;
    chat.deleteSession = deleteSession;
  };
})(window);
