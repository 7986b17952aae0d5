/* SomaUsage: the "Usage" panel: your tokens today and in the last 30 days, by model, and what
   is left of the budget today and this month. */
(function (root) {
  "use strict";

  var Http = root.SomaHttp;
  var h = root.SomaView.h;
  var $ = function (id) {
    return document.getElementById(id);
  };

  function left(period) {
    if (!period || period.limit === null || period.limit === undefined) return "no limit";
    return period.remaining.toLocaleString() + " of " + period.limit.toLocaleString() + " tokens left";
  }

  function show() {
    var dialog = $("usage");
    if (dialog.showModal) dialog.showModal();
    else dialog.setAttribute("open", "");
    return Http.api("GET", "/v1/usage").then(function (res) {
      var body = $("usage-body");
      if (!res.ok) {
        body.replaceChildren(h("p", { role: "alert", text: "Usage could not be read (" + res.status + ")." }));
        return;
      }
      var u = res.data;
      var rows = [
        ["Today", u.today.toLocaleString() + " tokens"],
        ["Last 30 days", u.last_30_days.toLocaleString() + " tokens"],
        ["Budget today", left(u.budget && u.budget.day)],
        ["Budget this month", left(u.budget && u.budget.month)],
      ];
      var table = h(
        "table",
        { className: "usage-table" },
        rows.map(function (r) {
          return h("tr", {}, [h("th", { scope: "row", text: r[0] }), h("td", { text: r[1] })]);
        })
      );
      var models = h(
        "ul",
        { "aria-label": "By model" },
        u.by_model.map(function (m) {
          return h("li", { text: m.model + ": " + m.tokens.toLocaleString() + " tokens" });
        })
      );
      var scope = u.scope === "yours" ? "Your chats." : "All of the tenant's chats.";
      body.replaceChildren(h("p", { className: "muted", text: scope }), table, models);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("usage")) return;
    $("open-usage").addEventListener("click", show);
    $("close-usage").addEventListener("click", function () {
      var dialog = $("usage");
      if (dialog.close) dialog.close();
      else dialog.removeAttribute("open");
    });
  });
})(window);
