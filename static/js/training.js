// Live training curves: drawn from the embedded data, then polled until the run finishes.
(function () {
  const script = document.currentScript;
  const url = script.dataset.url;
  let data = JSON.parse(document.getElementById("training-curves").textContent);
  const layout = (title, extra) =>
    Object.assign({ title: { text: title, font: { size: 14 }, x: 0, xanchor: "left" }, margin: { t: 64, r: 10, b: 40, l: 50 }, legend: { orientation: "h", y: -0.2 } }, extra);
  function draw() {
    if (!window.Plotly) return;
    // One step axis; each validation sits at the step its epoch ended on, and the epochs are
    // ticks on the top edge of the same axis (so they line up with the steps below them).
    const validated = data.epochs.map((epoch, i) => ({ epoch, step: data.epoch_steps[i], loss: data.val_loss[i] })).filter((row) => row.step !== null);
    window.Plotly.react(
      "loss-chart",
      [
        { x: data.steps, y: data.loss, mode: "lines", name: "train loss (step)", line: { color: "#4e6ef2" } },
        { x: validated.map((row) => row.step), y: validated.map((row) => row.loss), mode: "lines+markers", name: "validation loss (end of epoch)", line: { color: "#e0803a" } },
        { x: validated.map((row) => row.step), y: validated.map(() => null), xaxis: "x2", showlegend: false, hoverinfo: "skip" },
      ],
      layout("Loss", {
        xaxis: { title: { text: "step" }, rangemode: "tozero" },
        xaxis2: { overlaying: "x", matches: "x", side: "top", tickmode: "array", tickvals: validated.map((row) => row.step), ticktext: validated.map((row) => `epoch ${row.epoch}`), showgrid: true, tickfont: { size: 10 } },
      }),
      { displayModeBar: false, responsive: true }
    );
    window.Plotly.react(
      "score-chart",
      ["sample_f1", "precision", "recall"].map((key) => ({ x: data.epochs, y: data[key], mode: "lines+markers", name: key.replace("_", "-") })),
      layout("Validation scores", { xaxis: { title: { text: "epoch" }, dtick: 1, tick0: 0 }, yaxis: { range: [0, 1.05] } }),
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
