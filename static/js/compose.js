// Compose form helpers: the small Markdown toolbar over the message, and the Undo toast's countdown.

// Each mark wraps the selection; with nothing selected the cursor lands between the marks.
const MARKS = {
  bold: ["**", "**"],
  italic: ["_", "_"],
  link: ["[", "](https://)"],
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-md]");
  if (!button) return;
  const editor = document.getElementById(button.closest("[data-editor]").dataset.editor);
  const { selectionStart: start, selectionEnd: end, value } = editor;
  const selected = value.slice(start, end);
  if (button.dataset.md === "list") {
    const lines = (selected || "").split("\n").map((line) => `- ${line}`).join("\n");
    editor.setRangeText(lines, start, end, "end");
  } else {
    const [before, after] = MARKS[button.dataset.md];
    editor.setRangeText(before + selected + after, start, end, "end");
    if (!selected) editor.setSelectionRange(start + before.length, start + before.length);
  }
  editor.focus();
  editor.dispatchEvent(new Event("input", { bubbles: true }));
});

for (const toast of document.querySelectorAll("[data-undo-toast]")) {
  let seconds = Number(toast.dataset.seconds);
  const counter = toast.querySelector("[data-countdown]");
  const timer = setInterval(() => {
    seconds -= 1;
    counter.textContent = Math.max(seconds, 0);
    if (seconds <= 0) {
      clearInterval(timer);
      toast.hidden = true;
    }
  }, 1000);
}
