// "Anna is replying": the first keystroke in a reply editor tells the thread's other readers at once.
document.addEventListener("input", (event) => {
  if (!event.target.closest("form[data-reply-form]")) return;
  const state = document.getElementById("presence-replying");
  if (!state || state.value === "1") return;
  state.value = "1";
  document.body.dispatchEvent(new CustomEvent("presence-replying"));
});
