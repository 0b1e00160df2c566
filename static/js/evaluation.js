// Fig. 6-style bars (mean ± s.e.m. per pipeline) and caption-length histograms of a comparison.
(function () {
  if (!window.Plotly) return;
  const chart = JSON.parse(document.getElementById("score-chart").textContent);
  const health = JSON.parse(document.getElementById("health-data").textContent);
  const config = { displayModeBar: false, responsive: true };
  window.Plotly.newPlot(
    "score-bars",
    chart.pipelines.map((pipeline, index) => ({
      type: "bar",
      name: pipeline,
      x: chart.scores.map((score) => score.label),
      y: chart.scores.map((score) => score.means[index]),
      error_y: { type: "data", array: chart.scores.map((score) => score.sems[index] || 0), visible: true },
    })),
    { barmode: "group", margin: { t: 10, r: 10, b: 90, l: 50 }, legend: { orientation: "h" } },
    config
  );
  window.Plotly.newPlot(
    "length-histograms",
    Object.entries(health).map(([pipeline, h]) => ({
      type: "bar",
      name: pipeline,
      opacity: 0.6,
      x: h.histogram_edges.slice(0, -1).map((edge, i) => (edge + h.histogram_edges[i + 1]) / 2),
      y: h.histogram_counts,
    })),
    { barmode: "overlay", margin: { t: 10, r: 10, b: 40, l: 50 }, xaxis: { title: { text: "caption length (tokens)" } }, yaxis: { title: { text: "captions" } } },
    config
  );
})();
