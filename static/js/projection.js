// The interactive projection: one WebGL trace for clustered frames, one for noise, one ring per gold pick.
(function () {
  const data = JSON.parse(document.getElementById("projection-data").textContent);
  const PLACEHOLDER = "987654321"; // apps/curation/views.py: ASSET_PLACEHOLDER
  // The points arrive as four little-endian arrays of n values each (apps/curation/selectors.py,
  // projection_arrays): asset ids, x, y, cluster labels.
  fetch(data.points_url, { credentials: "same-origin" })
    .then((response) => { if (!response.ok) throw new Error("points: HTTP " + response.status); return response.arrayBuffer(); })
    .then((buffer) => draw(buffer))
    .catch((error) => { document.getElementById("projection").textContent = "The projection could not be loaded (" + error.message + ")."; });

  function draw(buffer) {
    const n = buffer.byteLength / 16;
    const points = {
      asset: new Int32Array(buffer, 0, n), x: new Float32Array(buffer, 4 * n, n),
      y: new Float32Array(buffer, 8 * n, n), cluster: new Int32Array(buffer, 12 * n, n),
    };
    const goldIds = new Set(data.gold);
    const pick = (mask) => {
      const out = { x: [], y: [], asset: [], cluster: [] };
      for (let i = 0; i < n; i++) {
        if (mask(i)) { out.x.push(points.x[i]); out.y.push(points.y[i]); out.asset.push(points.asset[i]); out.cluster.push(points.cluster[i]); }
      }
      return out;
    };
    const clustered = pick((i) => points.cluster[i] !== -1);
    const noise = pick((i) => points.cluster[i] === -1);
    const gold = pick((i) => goldIds.has(points.asset[i]));
    // A qualitative palette (Tableau 20): neighbouring cluster labels get clearly different colours.
    const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
      "#a0cbe8", "#ffbe7d", "#8cd17d", "#b6992d", "#499894", "#86bcb6", "#d37295", "#fabfd2", "#79706e", "#d4a6c8", "#f1ce63"];
    const hover = "frame %{customdata[0]}<br>cluster %{customdata[1]}<extra></extra>";
    const custom = (t) => t.asset.map((id, i) => [id, t.cluster[i] === -1 ? "noise" : t.cluster[i]]);
    const traces = [
      { type: "scattergl", mode: "markers", name: "clustered", x: clustered.x, y: clustered.y, customdata: custom(clustered),
        hovertemplate: hover, marker: { size: 6, color: clustered.cluster.map((c) => palette[c % palette.length]), opacity: 0.9 } },
      { type: "scattergl", mode: "markers", name: "noise", x: noise.x, y: noise.y, customdata: custom(noise),
        hovertemplate: hover, marker: { size: 5, color: "#adb5bd", opacity: 0.6 } },
      { type: "scattergl", mode: "markers", name: "gold picks", x: gold.x, y: gold.y, customdata: custom(gold),
        hovertemplate: hover, marker: { size: 13, color: "rgba(0,0,0,0)", line: { color: "#111827", width: 2 } } },
    ];
    const layout = { margin: { l: 30, r: 10, t: 10, b: 30 }, legend: { orientation: "h" }, hovermode: "closest",
                     xaxis: { zeroline: false, title: "UMAP 1" }, yaxis: { zeroline: false, title: "UMAP 2" } };
    const plot = document.getElementById("projection");
    Plotly.newPlot(plot, traces, layout, { responsive: true, displaylogo: false });
    // Hovering a dot shows its frame in the preview box, which stays (with a link) until the next
    // hover: plotly's own click event is not emitted for WebGL traces in every browser, so the
    // preview is the dependable way to open a frame; plotly_click opens it directly where it fires.
    const preview = document.getElementById("hover-preview");
    const image = preview.querySelector("img");
    const link = preview.querySelector("a");
    const caption = preview.querySelector(".caption");
    const open = (id) => { window.location = data.asset_url.replace(PLACEHOLDER, id); };
    plot.on("plotly_hover", (event) => {
      const [id, cluster] = event.points[0].customdata;
      image.src = data.thumb_url.replace(PLACEHOLDER, id);
      link.href = data.asset_url.replace(PLACEHOLDER, id);
      caption.textContent = "frame " + id + " · cluster " + cluster + " — open";
      preview.hidden = false;
    });
    plot.on("plotly_click", (event) => open(event.points[0].customdata[0]));
  }
})();
