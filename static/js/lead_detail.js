// Lead page: total score over time (server-rendered JSON).
(function () {
  const history = JSON.parse(document.getElementById("score-history").textContent);
  const canvas = document.getElementById("score-chart");
  if (!canvas || typeof Chart === "undefined") return;
  new Chart(canvas, {
    type: "line",
    data: {
      labels: history.map((row) => row.at.slice(0, 10)),
      datasets: [{ label: "Score", data: history.map((row) => row.total), borderColor: "#1d4ed8", tension: 0.2 }],
    },
    options: { maintainAspectRatio: false, scales: { y: { min: 0, max: 100 } } },
  });
})();
