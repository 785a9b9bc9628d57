// Home page: the user's open pipeline per stage (data rendered by the server as JSON).
(function () {
  const data = JSON.parse(document.getElementById("pipeline-data").textContent);
  const canvas = document.getElementById("pipeline-chart");
  if (!canvas || typeof Chart === "undefined") return;
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.map((row) => row.status),
      datasets: [
        { label: "Value", data: data.map((row) => row.value), backgroundColor: "#1d4ed8", yAxisID: "value" },
        { label: "Deals", data: data.map((row) => row.count), backgroundColor: "#93c5fd", yAxisID: "count" },
      ],
    },
    options: {
      maintainAspectRatio: false,
      scales: {
        value: { position: "left", beginAtZero: true, title: { display: true, text: "Value" } },
        count: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "Deals" } },
      },
    },
  });
})();
