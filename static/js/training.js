// Live training curves: drawn from the embedded data, then polled until the run finishes.
(function () {
  const script = document.currentScript;
  const url = script.dataset.url;
  let data = JSON.parse(document.getElementById("training-curves").textContent);
  const layout = (title, extra) =>
    Object.assign({ title: { text: title, font: { size: 14 } }, margin: { t: 36, r: 10, b: 40, l: 50 }, legend: { orientation: "h" } }, extra);
  function draw() {
    if (!window.Plotly) return;
    window.Plotly.react(
      "loss-chart",
      [
        { x: data.steps, y: data.loss, mode: "lines", name: "train loss (step)", line: { color: "#4e6ef2" } },
        { x: data.epochs, y: data.val_loss, mode: "lines+markers", name: "validation loss (epoch)", xaxis: "x2", line: { color: "#e0803a" } },
      ],
      layout("Loss", { xaxis: { title: { text: "step" } }, xaxis2: { overlaying: "x", side: "top", title: { text: "epoch" } } }),
      { displayModeBar: false, responsive: true }
    );
    window.Plotly.react(
      "score-chart",
      ["sample_f1", "precision", "recall"].map((key) => ({ x: data.epochs, y: data[key], mode: "lines+markers", name: key.replace("_", "-") })),
      layout("Validation scores", { xaxis: { title: { text: "epoch" }, dtick: 1 }, yaxis: { range: [0, 1.05] } }),
      { displayModeBar: false, responsive: true }
    );
  }
  draw();
  if (data.finished) return;
  const timer = setInterval(async () => {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    data = await response.json();
    draw();
    if (data.finished) {
      clearInterval(timer);
      window.location.reload(); // the before/after table and the result appear
    }
  }, 2000);
})();
