/* A shared chat's page: replies, sent as text, are shown as Markdown by the chat's own safe renderer. */
(function (root) {
  "use strict";
  root.document.querySelectorAll("[data-markdown]").forEach(function (body) {
    var text = body.textContent;
    body.replaceChildren(root.SomaMarkdown.render(text, root.document));
    body.classList.remove("plain");
    body.classList.add("markdown");
  });
})(window);
