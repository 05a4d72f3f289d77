// readykit ops: auto-refresh with a pause control, and the traffic chart. No inline script:
// the dashboard's CSP allows scripts from this origin only.
(function () {
  "use strict";
  var PAUSED = "readykit-ops-paused";
  var REFRESH_MS = 15000;

  function paused() { return window.localStorage.getItem(PAUSED) === "1"; }

  function setupPause() {
    var button = document.getElementById("pause");
    if (!button) { return; }
    function label() { button.textContent = paused() ? "Resume refresh" : "Pause refresh"; }
    button.addEventListener("click", function () {
      window.localStorage.setItem(PAUSED, paused() ? "0" : "1");
      label();
    });
    label();
    window.setInterval(function () { if (!paused()) { window.location.reload(); } }, REFRESH_MS);
  }

  function drawChart() {
    var box = document.getElementById("chart");
    if (!box || typeof window.uPlot === "undefined") { return; }
    fetch(document.body.dataset.ops + "/api/overview", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var s = data.traffic.series;
        var opts = {
          width: Math.min(900, box.clientWidth || 900), height: 220,
          series: [{}, { label: "requests/min", stroke: "#2a6fdb" },
                   { label: "errors/min", stroke: "#c0392b" }],
        };
        box.textContent = "";
        new window.uPlot(opts, [s.minutes, s.requests, s.errors], box);
      });
  }

  document.addEventListener("DOMContentLoaded", function () { setupPause(); drawChart(); });
})();
