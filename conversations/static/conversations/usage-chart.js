/* The admin's Usage chart: tokens per day, one line per tenant/persona/model/user (the largest few). */
(function () {
  "use strict";
  var holder = document.getElementById("usage-chart");
  var data = JSON.parse(document.getElementById("usage-data").textContent);
  if (!holder || !window.uPlot || !data.series.length) {
    if (holder) holder.textContent = "No usage to draw.";
    return;
  }
  var colors = ["#2f5bd3", "#d3542f", "#2fa35b", "#a32fd3", "#d3a32f", "#2fb7d3", "#7a7a7a", "#d32f7a"];
  var x = data.days.map(function (d) {
    return Date.parse(d + "T00:00:00Z") / 1000;
  });
  var series = [{ label: "day" }].concat(
    data.series.map(function (s, i) {
      return { label: s.label, stroke: colors[i % colors.length], width: 2, points: { show: true } };
    })
  );
  var values = [x].concat(
    data.series.map(function (s) {
      return s.tokens;
    })
  );
  var width = Math.max(320, Math.min(1100, holder.clientWidth || 900));
  holder.dataset.series = String(data.series.length);
  new window.uPlot(
    { width: width, height: 300, series: series, axes: [{}, { label: "tokens" }], scales: { x: { time: true } } },
    values,
    holder
  );
  holder.dataset.drawn = "true";
})();
