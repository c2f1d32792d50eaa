// Each table cell learns its column's name (data-label), which the stylesheet shows above the cell when a phone
// stacks the table's rows. Runs on every page part htmx brings in, so swapped rows are labelled too.
function labelCells(root) {
  for (const table of root.querySelectorAll(".table")) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.cells].forEach((cell, index) => {
        if (!cell.hasAttribute("data-label") && names[index]) cell.dataset.label = names[index];
      });
    }
  }
}

document.addEventListener("htmx:load", (event) => {
  const part = event.detail.elt;
  labelCells(part.closest(".table")?.parentElement ?? part);
});
