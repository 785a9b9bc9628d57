// Campaign page: deliveries, opens and clicks per day (server-rendered JSON).
(function () {
  const data = document.getElementById("campaign-timeline");
  const canvas = document.getElementById("campaign-chart");
  if (!data || !canvas || typeof Chart === "undefined") return;
  const timeline = JSON.parse(data.textContent);
  const colours = { delivered: "#64748b", opened: "#1d4ed8", clicked: "#16a34a" };
  new Chart(canvas, {
    type: "line",
    data: {
      labels: timeline.labels,
      datasets: Object.entries(timeline.series).map(([kind, values]) => ({
        label: kind[0].toUpperCase() + kind.slice(1), data: values, borderColor: colours[kind], tension: 0.2,
      })),
    },
    options: { maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
  });
})();
