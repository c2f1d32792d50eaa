// A link to a message the thread's page left out (#message-123, older than the latest ones) opens the whole thread.
(function () {
  function showLinkedMessage() {
    const hash = window.location.hash;
    if (!/^#message-\d+$/.test(hash) || document.getElementById(hash.slice(1))) return;
    const earlier = document.querySelector("[data-earlier] a");
    if (earlier) window.location.replace(earlier.href + hash);
  }
  showLinkedMessage();
  window.addEventListener("hashchange", showLinkedMessage);
})();

// Text selected in a message fills that message's "Redact" field, so staff select a passcode and press Redact.
(function () {
  document.addEventListener("selectionchange", function () {
    const selection = window.getSelection();
    const text = selection ? selection.toString().trim() : "";
    if (!text || !selection.anchorNode) return;
    const start = selection.anchorNode.nodeType === Node.ELEMENT_NODE ? selection.anchorNode : selection.anchorNode.parentElement;
    const entry = start && start.closest(".entry");
    const field = entry && entry.querySelector("[data-redact] input[name=text]");
    if (field && !field.contains(start)) field.value = text;
  });
})();
