// Sorts a report table by the column whose heading is clicked (again: reversed). Small and
// bundled, so the pages work offline; DLRN pulls jQuery and DataTables from CDNs for this.
"use strict";
(function () {
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  function key(row, index) {
    const cell = row.cells[index];
    return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  }
  function sortBy(table, heading) {
    const index = heading.cellIndex;
    const ascending = heading.getAttribute("aria-sort") !== "ascending";
    for (const other of heading.parentNode.cells) other.removeAttribute("aria-sort");
    heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => collator.compare(key(a, index), key(b, index)) * (ascending ? 1 : -1));
    body.append(...rows);
  }
  document.addEventListener("DOMContentLoaded", function () {
    for (const table of document.querySelectorAll("table.sortable")) {
      for (const heading of table.tHead.rows[0].cells) {
        heading.addEventListener("click", () => sortBy(table, heading));
      }
    }
  });
})();
