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

// A message's "Redact…" opens the page's one redact form (kept in a <template>) in its entry, posting to the address
// the entry's own link names (without JavaScript that link opens the form on a page of its own). Text selected in a
// message fills that message's field, so staff select a passcode and press Redact.
(function () {
  let selected = null; // the last text selected in a message, and its entry

  function entryOf(node) {
    const element = node && (node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement);
    return element && !element.closest("[data-redact]") ? element.closest(".entry") : null;
  }

  document.addEventListener("selectionchange", function () {
    const selection = window.getSelection();
    const text = selection ? selection.toString().trim() : "";
    const entry = text && entryOf(selection.anchorNode);
    if (!entry) return;
    selected = { entry: entry, text: text };
    const field = entry.querySelector("[data-redact] input[name=text]");
    if (field) field.value = text;
  });

  // "toggle" does not bubble: listen while it comes down.
  document.addEventListener("toggle", function (event) {
    const details = event.target;
    if (!details.matches("details.redact") || !details.open) return;
    const link = details.querySelector("a[data-redact-page]");
    const template = document.querySelector("template[data-redact-form]");
    if (!link || !template) return;
    const form = template.content.querySelector("form").cloneNode(true);
    form.action = link.href;
    form.setAttribute("hx-post", link.getAttribute("href"));
    const field = form.querySelector("input[name=text]");
    if (selected && selected.entry === details.closest(".entry")) field.value = selected.text;
    link.replaceWith(form);
    htmx.process(form);
  }, true);
})();
