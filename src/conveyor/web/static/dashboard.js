// conveyor's dashboard: a filter box for any table that names one (data-filter="#table-id").
// Bundled with the package; pages work without it, the filter only hides rows.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input[data-filter]")) {
    const table = document.querySelector(box.dataset.filter);
    if (!table) continue;
    const apply = () => {
      const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const row of table.tBodies[0].rows) {
        const text = row.textContent.toLowerCase();
        row.hidden = !words.every((w) => text.includes(w));
      }
    };
    box.addEventListener("input", apply);
    apply();
  }
});
