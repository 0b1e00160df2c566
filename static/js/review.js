// The review page's keyboard: move through the queue, pick a field, vote, save, open the frame.
// Every action is a click on a control the page already has, so keys and mouse do the same.
(function () {
  "use strict";
  const FIELDS = ["scene", "background", "characters", "salient_objects", "overall"];
  let picked = FIELDS.length - 1; // "overall" until a number key picks another field

  function page() { return document.getElementById("review-page"); }

  function highlight() {
    document.querySelectorAll("[data-vote-field]").forEach((row) => {
      row.classList.toggle("picked", row.dataset.voteField === FIELDS[picked]);
    });
  }

  function choose(value) {
    const input = document.querySelector(`input[name="choice_${FIELDS[picked]}"][value="${value}"]`);
    if (input) { input.checked = true; }
    if (FIELDS[picked] !== "overall" && picked < FIELDS.length - 1) { picked += 1; highlight(); }
  }

  function go(id) {
    const link = document.getElementById(id);
    if (link) { link.click(); }
  }

  function correct(side) {
    const details = document.querySelector(`details.correct[data-side="${side}"][data-field="${FIELDS[picked]}"]`);
    if (details) {
      details.open = true;
      const area = details.querySelector("textarea");
      if (area) { area.focus(); }
    }
  }

  document.addEventListener("keydown", (event) => {
    if (!page() || event.ctrlKey || event.metaKey || event.altKey) { return; }
    const typing = event.target.closest && event.target.closest("textarea, input[type=text], input[type=number]");
    if (typing) { return; }
    const key = event.key;
    if (key === "ArrowRight") { go("next-frame"); }
    else if (key === "ArrowLeft") { go("previous-frame"); }
    else if (key >= "1" && key <= "5") { picked = Number(key) - 1; highlight(); }
    else if (key === "a") { choose("A"); }
    else if (key === "b") { choose("B"); }
    else if (key === "s") { choose("same"); }
    else if (key === "Enter") { const button = document.getElementById("save-vote"); if (button) { button.click(); } }
    else if (key === "o") { go("open-frame"); }
    else if (key === "e") { correct("A"); }
    else if (key === "E") { correct("B"); }
    else { return; }
    event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", () => { picked = FIELDS.length - 1; highlight(); });
  document.addEventListener("review-error", (event) => { window.alert(event.detail.value); });
  document.addEventListener("DOMContentLoaded", highlight);
})();
