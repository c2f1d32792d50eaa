// Customer picker (templates/staff/repairs/_customer_picker.html): choosing one of the customers the search
// listed puts its id into the form's hidden customer_id field and shows who was chosen.
document.addEventListener("click", (event) => {
  const option = event.target.closest("[data-customer-picker] [data-customer-id]");
  if (!option) return;
  const picker = option.closest("[data-customer-picker]");
  picker.querySelector("input[name=customer_id]").value = option.dataset.customerId;
  const chosen = picker.querySelector("[data-customer-chosen]");
  chosen.querySelector("[data-customer-label]").textContent = option.dataset.customerLabel;
  chosen.hidden = false;
  const search = picker.querySelector("input[type=search]");
  search.value = "";
  search.focus();
  picker.querySelector("#customer-options").replaceChildren();
  search.removeAttribute("aria-invalid");
  picker.classList.remove("has-error");
  picker.querySelectorAll(".error").forEach((error) => error.remove());
});
