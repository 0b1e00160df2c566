// Health check of a caption run: token-length histogram and empty / missing fields.
(function () {
  const h = JSON.parse(document.getElementById("health-data").textContent);
  const config = { displayModeBar: false, responsive: true };
  if (h.counted && document.getElementById("token-histogram")) {
    window.Plotly.newPlot("token-histogram", [{ type: "histogram", x: h.tokens, nbinsx: 30, marker: { color: "#4e6ef2" } }],
      { margin: { t: 10, r: 10, b: 40, l: 50 }, xaxis: { title: { text: "tokens" } }, yaxis: { title: { text: "captions" } },
        shapes: [{ type: "line", x0: h.token_limit, x1: h.token_limit, yref: "paper", y0: 0, y1: 1, line: { color: "#c33", dash: "dot" } }] }, config);
  }
  const fields = ["scene", "background", "characters", "salient_objects"];
  window.Plotly.newPlot("field-bars", [
    { type: "bar", name: "empty", x: fields, y: fields.map((f) => h.empty_fields[f] || 0) },
    { type: "bar", name: "missing", x: fields, y: fields.map((f) => h.missing_fields[f] || 0) },
  ], { barmode: "group", margin: { t: 10, r: 10, b: 40, l: 50 }, yaxis: { title: { text: "captions" } } }, config);
})();
