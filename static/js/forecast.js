// Forecast page: pipeline vs weighted value by month, one chart per currency (the data is
// rendered by the server as JSON). Drawn again after htmx swaps in another scope or period.
(function () {
  const charts = [];

  function draw() {
    charts.splice(0).forEach((chart) => chart.destroy());
    const source = document.getElementById("forecast-chart-data");
    if (!source || typeof Chart === "undefined") return;
    const series = JSON.parse(source.textContent);
    document.querySelectorAll("[data-forecast-chart]").forEach((canvas) => {
      const data = series.find((row) => row.currency === canvas.dataset.forecastChart);
      if (!data) return;
      charts.push(
        new Chart(canvas, {
          type: "bar",
          data: {
            labels: data.labels,
            datasets: [
              { label: `Pipeline (${data.currency})`, data: data.pipeline, backgroundColor: "#93c5fd" },
              { label: `Weighted (${data.currency})`, data: data.weighted, backgroundColor: "#1d4ed8" },
            ],
          },
          options: {
            maintainAspectRatio: false,
            scales: { y: { beginAtZero: true, title: { display: true, text: data.currency } } },
          },
        })
      );
    });
  }

  draw();
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.target.matches("[data-forecast]")) draw();
  });
})();
