// Dashboard charts: each <canvas data-chart="{…}"> gets a Chart.js chart. Runs on load and
// after every htmx swap of #dashboard (the swap brings new canvases with fresh data).
(function () {
  "use strict";

  function options(spec) {
    var horizontal = !!spec.horizontal;
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false, // a refresh every 30 s should not replay an animation
      indexAxis: horizontal ? "y" : "x",
      plugins: { legend: { display: spec.datasets.length > 1, position: "bottom" } },
      scales: {
        x: { stacked: !!spec.stacked, beginAtZero: true, grid: { display: horizontal } },
        y: { stacked: !!spec.stacked, beginAtZero: true, ticks: { precision: 0 } }
      }
    };
  }

  function draw(canvas) {
    if (typeof window.Chart !== "function") return;
    var spec = JSON.parse(canvas.getAttribute("data-chart"));
    var old = window.Chart.getChart(canvas);
    if (old) old.destroy();
    var chart = new window.Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d) {
          return { label: d.label, data: d.data, backgroundColor: d.color, borderColor: d.color, borderWidth: 0 };
        })
      },
      options: options(spec)
    });
    canvas.setAttribute("data-drawn", "true");
    return chart;
  }

  function drawAll(root) {
    var canvases = (root || document).querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) draw(canvases[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "dashboard") drawAll(document.getElementById("dashboard"));
    else if (document.getElementById("dashboard")) drawAll(document.getElementById("dashboard"));
  });
})();
