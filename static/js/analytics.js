// Executive dashboard: the five charts (data rendered by the server as JSON in
// #analytics-charts), drawn again after htmx swaps in other filters; "Download PNG" per chart
// (Chart.js toBase64Image, on a white background) and a print button. Each canvas gets
// data-ready="drawn" (or "empty", with its note shown instead) once this script is done with it.
(function () {
  const COLORS = ["#1d4ed8", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2"];
  const charts = {};

  // A white background, so a downloaded PNG is readable in any viewer.
  const whiteBackground = {
    id: "whiteBackground",
    beforeDraw(chart) {
      const { ctx } = chart;
      ctx.save();
      ctx.globalCompositeOperation = "destination-over";
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, chart.width, chart.height);
      ctx.restore();
    },
  };

  function color(index) {
    return COLORS[index % COLORS.length];
  }

  function config(name, data) {
    const base = { maintainAspectRatio: false, animation: false };
    if (name === "revenue") {
      return {
        type: "line",
        data: {
          labels: data.labels,
          datasets: data.datasets.map((set, index) => ({
            label: set.label,
            data: set.data,
            borderColor: color(Math.floor(index / 2)),
            backgroundColor: color(Math.floor(index / 2)),
            borderDash: set.this_year ? [] : [6, 4],
            spanGaps: false,
          })),
        },
        options: { ...base, scales: { y: { beginAtZero: true } } },
      };
    }
    if (name === "trend") {
      return {
        type: "line",
        data: {
          labels: data.labels,
          datasets: data.datasets.map((set, index) => ({
            label: set.label, data: set.data, borderColor: color(index), backgroundColor: color(index),
          })),
        },
        options: { ...base, scales: { y: { beginAtZero: true, title: { display: true, text: "Per day" } } } },
      };
    }
    const horizontal = name === "reps" || name === "funnel";
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map((set, index) => ({
          label: set.label, data: set.data, backgroundColor: color(index),
        })),
      },
      options: {
        ...base,
        indexAxis: horizontal ? "y" : "x",
        scales: {
          // Deal counts are whole numbers: no 0.5 ticks on the funnel's axis.
          x: { beginAtZero: true, ticks: name === "funnel" ? { precision: 0 } : {} },
          y: { beginAtZero: true },
        },
      },
    };
  }

  function draw() {
    Object.keys(charts).forEach((name) => {
      charts[name].destroy();
      delete charts[name];
    });
    const source = document.getElementById("analytics-charts");
    if (!source || typeof Chart === "undefined") return;
    const series = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const name = canvas.dataset.chart;
      if (!series[name]) return;
      // Empty: no value and no deal count (deals without amounts still make a bar chart).
      const empty = !series[name].datasets.some(
        (set) => set.data.some((value) => value) || (set.deals || []).some((count) => count),
      );
      canvas.hidden = empty;
      canvas.closest("figure").classList.toggle("is-empty", empty);
      const png = document.querySelector(`[data-png="${name}"]`);
      if (png) png.hidden = empty;
      let note = canvas.parentElement.querySelector(".chart-empty");
      if (empty && !note) {
        note = document.createElement("p");
        note.className = "chart-empty empty muted";
        note.textContent = "Nothing to chart for these filters yet.";
        canvas.after(note);
      }
      if (note) note.hidden = !empty;
      if (!empty) {
        const chart = config(name, series[name]);
        chart.plugins = [whiteBackground];
        charts[name] = new Chart(canvas, chart);
      }
      // Done with this canvas (a swapped-in one has no data-ready until drawn): what the
      // browser tests wait for, "drawn" or "empty".
      canvas.dataset.ready = empty ? "empty" : "drawn";
    });
  }

  document.addEventListener("click", (event) => {
    const png = event.target.closest("[data-png]");
    if (png && charts[png.dataset.png]) {
      const link = document.createElement("a");
      link.href = charts[png.dataset.png].toBase64Image("image/png", 1);
      link.download = `${png.dataset.png}.png`;
      document.body.appendChild(link);
      link.click();
      link.remove();
    }
    if (event.target.closest("[data-print]")) window.print();
  });

  // Charts fit the printed page, then the screen again.
  window.addEventListener("beforeprint", () => Object.values(charts).forEach((chart) => chart.resize()));
  window.addEventListener("afterprint", () => Object.values(charts).forEach((chart) => chart.resize()));

  draw();
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.target.matches("[data-dashboard]")) draw();
  });
})();
