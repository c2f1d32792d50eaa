// The print view's button opens the browser's print dialog (no inline handlers under our CSP).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
