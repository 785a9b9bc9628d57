// Model page: ROC curves (model vs rules), calibration by decile, feature importance.
(function () {
  const source = document.getElementById("ai-charts");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const points = (rows) => rows.map((p) => ({ x: p[0], y: p[1] }));
  const roc = document.getElementById("roc-chart");
  if (roc) {
    new Chart(roc, {
      type: "scatter",
      data: {
        datasets: [
          { label: "Model", data: points(data.roc_model), showLine: true, borderColor: "#1d4ed8", pointRadius: 0 },
          { label: "Rule score", data: points(data.roc_rules), showLine: true, borderColor: "#b45309", pointRadius: 0 },
          { label: "Chance", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, borderColor: "#94a3b8", borderDash: [4, 4], pointRadius: 0 },
        ],
      },
      options: { maintainAspectRatio: false, scales: { x: { min: 0, max: 1, title: { display: true, text: "False positive rate" } }, y: { min: 0, max: 1, title: { display: true, text: "True positive rate" } } } },
    });
  }
  const calibration = document.getElementById("calibration-chart");
  if (calibration) {
    new Chart(calibration, {
      type: "scatter",
      data: {
        datasets: [
          { label: "Deciles (predicted vs observed)", data: data.calibration.map((r) => ({ x: r.predicted, y: r.rate })), borderColor: "#1d4ed8", backgroundColor: "#1d4ed8" },
          { label: "Perfect calibration", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, borderColor: "#94a3b8", borderDash: [4, 4], pointRadius: 0 },
        ],
      },
      options: { maintainAspectRatio: false, scales: { x: { min: 0, max: 1, title: { display: true, text: "Predicted" } }, y: { min: 0, max: 1, title: { display: true, text: "Observed" } } } },
    });
  }
  const importance = document.getElementById("importance-chart");
  if (importance) {
    new Chart(importance, {
      type: "bar",
      data: { labels: data.importance.map((r) => r[0]), datasets: [{ label: "Importance", data: data.importance.map((r) => r[1]), backgroundColor: "#1d4ed8" }] },
      options: { indexAxis: "y", maintainAspectRatio: false },
    });
  }
})();
