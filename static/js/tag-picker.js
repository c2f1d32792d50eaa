// The template form's tag picker: a button inserts its tag ({{ repair_number }}) at the cursor of the subject or
// text field last used (the text when none was), and the field reports the change like typing would.

let lastField = null;

document.addEventListener("focusin", (event) => {
  if (event.target.matches("[data-tag-target]")) lastField = event.target;
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-tag]");
  if (!button) return;
  const picker = button.closest("[data-tag-default]");
  const field = lastField || document.getElementById(picker.dataset.tagDefault);
  const tag = `{{ ${button.dataset.tag} }}`;
  field.setRangeText(tag, field.selectionStart, field.selectionEnd, "end");
  field.focus();
  field.dispatchEvent(new Event("input", { bubbles: true }));
});
