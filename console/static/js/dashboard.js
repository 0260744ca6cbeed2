/* Dashboard charts drawn with the vendored Chart.js from the page's JSON data block. */
(function () {
  "use strict";
  var block = document.getElementById("dashboard-data");
  if (!block || !window.Chart) { return; }
  var data = JSON.parse(block.textContent);
  var severityColours = { critical: "#7b1fa2", high: "#c62828", medium: "#ef6c00", low: "#2e7d32", informational: "#546e7a" };
  var histogram = document.getElementById("chart-histogram");
  if (histogram) {
    new window.Chart(histogram, {
      type: "bar",
      data: {
        labels: data.histogram.map(function (b) { return b.label; }),
        datasets: [{ label: data.labels.alerts, data: data.histogram.map(function (b) { return b.count; }), backgroundColor: "#1f4e79" }]
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } }
    });
  }
  var severity = document.getElementById("chart-severity");
  if (severity) {
    var keys = Object.keys(data.by_severity);
    new window.Chart(severity, {
      type: "doughnut",
      data: {
        labels: keys.map(function (k) { return data.labels.severity[k] || k; }),
        datasets: [{ data: keys.map(function (k) { return data.by_severity[k]; }), backgroundColor: keys.map(function (k) { return severityColours[k] || "#999"; }) }]
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false }
    });
  }
})();
