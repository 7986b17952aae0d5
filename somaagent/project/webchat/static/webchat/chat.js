/* The web chat's page: sessions from the HTTP API, replies from the WebSocket, folded by SomaTimeline.
 *
 * This file holds the page's state, makes its parts (the chat list, uploads, the chat's documents),
 * installs the chat-*.js modules on one shared `chat` object, wires the page's controls to them and
 * opens the chat the URL names (or a new one). The modules, loaded before it by chat.html:
 *   chat-render.js   the timeline drawn on the page, the status line, scrolling
 *   chat-session.js  opening a chat, its history pages, its WebSocket (reconnects from the cursor)
 *   chat-send.js     sending (idempotency keys), Retry, Stop, edit and regenerate (new branches)
 *   chat-replies.js  feedback on replies, answers to approvals
 *   chat-head.js     the title, Rename, Delete, Share
 * Each calls the others through `chat` when it runs, so their load order does not matter.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("chat-config").textContent);
  var Timeline = window.SomaTimeline;
  var Branches = window.SomaBranches;
  window.SomaHttp.loginUrl = cfg.loginUrl;
  var $ = function (id) {
    return document.getElementById(id);
  };

  var state = {
    sessionId: null,
    generation: 0, // bumps whenever the open session changes; stale callbacks check it
    timeline: new Timeline(0),
    nodes: new Map(),
    olderCursor: null,
    stream: null,
    renderQueued: new Set(),
    renderScheduled: false,
    feedback: {}, // event_id of a reply -> {rating: "up" | "down", comment, tags}: what you gave in this chat
    branches: new Branches(),
    branch: null, // an event the shown branch goes through (null: the active branch)
    found: null, // the event a search result opened the chat at: shown marked, scrolled to
    olderLoad: null, // the page of older messages being loaded (a promise), if one is
    editing: null, // the user item being edited
  };
  var chat = { state: state };

  chat.sidebar = new window.SomaSidebar({
    currentId: function () {
      return state.sessionId;
    },
    onOpen: function (id, eventId) {
      chat.openSession(id, true, eventId || null, eventId || null);
    },
  });
  chat.uploads = new window.SomaUploads({
    list: $("attachments"),
    maxBytes: cfg.uploads.max_bytes,
    sessionId: function () {
      return state.sessionId;
    },
    onRemove: function () {
      $("composer-input").focus();
    },
  });
  chat.chatFiles = new window.SomaChatFiles({
    list: $("chat-files"),
    sessionId: function () {
      return state.sessionId;
    },
  });
  var sidebar = chat.sidebar;

  window.SomaChatRender(chat);
  window.SomaChatSession(chat);
  window.SomaChatSend(chat);
  window.SomaChatReplies(chat);
  window.SomaChatHead(chat);

  /* ---------- wiring ---------- */

  $("doc-input").addEventListener("change", function (ev) {
    chat.chatFiles.add(ev.target.files);
    ev.target.value = "";
  });
  $("log").addEventListener("dragover", function (ev) {
    if (state.sessionId && ev.dataTransfer && Array.prototype.indexOf.call(ev.dataTransfer.types, "Files") >= 0) {
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
    }
  });
  $("log").addEventListener("drop", function (ev) {
    if (!state.sessionId || !ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    chat.chatFiles.add(ev.dataTransfer.files);
  });
  $("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    chat.submit();
  });
  $("composer-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      chat.submit();
    }
  });
  $("file-input").addEventListener("change", function (ev) {
    chat.uploads.add(ev.target.files);
    ev.target.value = "";
  });
  $("stop").addEventListener("click", chat.stop);
  $("new-chat").addEventListener("click", function () {
    chat.newChat(true);
    sidebar.close();
  });
  $("more-sessions").addEventListener("click", function () {
    sidebar.load(false);
  });
  $("load-older").addEventListener("click", chat.loadOlder);
  $("rename").addEventListener("click", chat.startRename);
  $("rename-cancel").addEventListener("click", chat.endRename);
  $("rename-form").addEventListener("submit", chat.saveRename);
  $("rename-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") chat.endRename();
  });
  $("delete").addEventListener("click", chat.deleteSession);
  $("share").addEventListener("click", chat.share);
  var searchTimer = null;
  $("search-input").addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      sidebar.search($("search-input").value);
    }, 250);
  });
  $("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearTimeout(searchTimer);
    sidebar.search($("search-input").value);
  });
  $("open-sidebar").addEventListener("click", function () {
    sidebar.open();
  });
  $("close-sidebar").addEventListener("click", function () {
    sidebar.close();
    $("open-sidebar").focus();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && sidebar.close()) $("open-sidebar").focus();
  });
  window.addEventListener("online", function () {
    if (!state.stream) return chat.clearOffline();
    // A short drop can leave the socket open: then no reconnect comes to clear the banner.
    if (state.stream.isOpen()) chat.clearOffline();
    else state.stream.nudge();
  });
  window.addEventListener("offline", function () {
    chat.setStatus(chat.OFFLINE_TEXT);
  });
  window.addEventListener("popstate", function () {
    var m = location.pathname.match(/^\/c\/([0-9a-f-]{36})\/?$/);
    if (m) chat.openSession(m[1], false);
    else chat.newChat(false);
  });
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries[0].isIntersecting) chat.loadOlder();
    }).observe($("load-older"));
  }

  sidebar.load(true);
  var linked = location.hash.match(/^#event-([0-9a-f-]{36})$/); // a search result opened in a new tab
  if (cfg.sessionId) chat.openSession(cfg.sessionId, false, linked && linked[1], linked && linked[1]);
  else chat.newChat(false);
  window.somaChat = {
    state: state, // for debugging in the console
    reloadChats: function () {
      sidebar.load(true); // after an import (data.js)
    },
  };
})();
