// Bar chart of frames per character in a labelling project's final gold labels.
(function () {
  const data = JSON.parse(document.getElementById("distribution-data").textContent);
  const target = document.getElementById("distribution");
  if (!target || !window.Plotly) return;
  window.Plotly.newPlot(
    target,
    [{ type: "bar", x: data.names, y: data.counts, marker: { color: "#4e6ef2" }, hovertemplate: "%{x}: %{y} frames<extra></extra>" }],
    { margin: { t: 10, r: 10, b: 60, l: 50 }, yaxis: { title: { text: "frames" }, rangemode: "tozero" } },
    { displayModeBar: false, responsive: true }
  );
})();
