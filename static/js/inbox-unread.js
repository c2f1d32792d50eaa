// The browser tab's title starts with the unread count, kept in step with the top navigation's counter
// (which htmx fetches again every 20 seconds).
(function () {
  "use strict";
  var plainTitle = document.title;

  function showUnread() {
    var counter = document.getElementById("unread-counter");
    if (!counter) return;
    var unread = parseInt(counter.getAttribute("data-unread") || "0", 10);
    document.title = unread > 0 ? "(" + unread + ") " + plainTitle : plainTitle;
  }

  document.addEventListener("DOMContentLoaded", showUnread);
  document.addEventListener("htmx:afterSettle", showUnread);
})();
