// Progressive enhancement only: the page is complete without script.
(function () {
  "use strict";
  // A crosshair across every chart: they share one time axis.
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg.chart"));
  function timeAt(svg, clientX) {
    var box = svg.getBoundingClientRect();
    var vb = svg.viewBox.baseVal;
    var x = (clientX - box.left) / box.width * vb.width;
    var left = Number(svg.dataset.left), plot = Number(svg.dataset.plot);
    var t0 = Number(svg.dataset.t0), t1 = Number(svg.dataset.t1);
    if (x < left || x > left + plot) return null;
    return { x: x, t: t0 + (x - left) / plot * (t1 - t0) };
  }
  function show(at) {
    charts.forEach(function (svg) {
      var cursor = svg.querySelector(".cursor");
      if (!cursor) return;
      if (!at) { svg.classList.remove("hover"); return; }
      svg.classList.add("hover");
      var line = cursor.querySelector("line"), text = cursor.querySelector("text");
      line.setAttribute("x1", at.x); line.setAttribute("x2", at.x);
      text.setAttribute("x", at.x + 4);
      text.textContent = (at.t / 1e9).toFixed(3) + " s";
    });
  }
  charts.forEach(function (svg) {
    svg.addEventListener("mousemove", function (e) { show(timeAt(svg, e.clientX)); });
    svg.addEventListener("mouseleave", function () { show(null); });
  });
  // Filter the record table by any text in a row.
  var filter = document.getElementById("filter");
  var table = document.getElementById("record-table");
  if (filter && table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      rows.forEach(function (row) {
        row.style.display = !q || row.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
