// Health check of a caption run: token-length histogram and empty / missing fields.
(function () {
  const h = JSON.parse(document.getElementById("health-data").textContent);
  const config = { displayModeBar: false, responsive: true };
  if (h.counted && document.getElementById("token-histogram")) {
    // The summary holds the histogram's bins, not every caption's length (a run may have millions).
    const bins = h.token_histogram;
    const limit = Number(document.getElementById("token-histogram").dataset.tokenLimit);
    const centres = bins.counts.map((_, i) => bins.start + (i + 0.5) * bins.width);
    window.Plotly.newPlot("token-histogram", [{ type: "bar", x: centres, y: bins.counts, width: bins.width, marker: { color: "#4e6ef2" } }],
      { margin: { t: 10, r: 10, b: 40, l: 50 }, xaxis: { title: { text: "tokens" } }, yaxis: { title: { text: "captions" } },
        shapes: [{ type: "line", x0: limit, x1: limit, yref: "paper", y0: 0, y1: 1, line: { color: "#c33", dash: "dot" } }] }, config);
  }
  const fields = ["scene", "background", "characters", "salient_objects"];
  window.Plotly.newPlot("field-bars", [
    { type: "bar", name: "empty", x: fields, y: fields.map((f) => h.empty_fields[f] || 0) },
    { type: "bar", name: "missing", x: fields, y: fields.map((f) => h.missing_fields[f] || 0) },
  ], { barmode: "group", margin: { t: 10, r: 10, b: 40, l: 50 }, yaxis: { title: { text: "captions" } } }, config);
})();
