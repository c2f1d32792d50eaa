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
