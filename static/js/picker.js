// The gallery photo picker dialog (templates/includes/photo_picker.html), shared by the studio and the workflow
// pages. A [data-action=pick-photo] button opens it (its hx-get fills the tiles); the button sits in a .picked box
// that holds what a tile sets. One photo: a hidden input and its thumbnail, and the dialog closes. Several photos
// (the box has data-several): each tile adds or removes a chip with a hidden input named data-name, and the dialog
// stays open until Done. Event delegation, so swapped-in boxes and tiles just work.
"use strict";

function pickerDialog() {
  return document.getElementById("photo-picker");
}

// The box of the button that opened the dialog: several boxes may share a target (the studio's ControlNet slots).
let pickerOpener = null;

function pickerBox() {
  return pickerOpener?.isConnected ? { opener: pickerOpener, box: pickerOpener.closest(".picked") } : null;
}

function pickerChosen(box) {
  return [...box.querySelectorAll("[data-picked-photo]")].map((chip) => chip.dataset.pickedPhoto);
}

// Tiles already among the chosen ones show as pressed, also after "More photos" brings the next page.
function pickerMarkTiles() {
  const dialog = pickerDialog();
  const box = dialog && pickerBox()?.box;
  if (!box || !("several" in box.dataset)) return;
  const chosen = pickerChosen(box);
  dialog.querySelectorAll('[data-action="picked"]').forEach((tile) => {
    tile.setAttribute("aria-pressed", String(chosen.includes(tile.dataset.photoId)));
  });
  const count = dialog.querySelector("[data-picker-count]");
  count.textContent = chosen.length === 1 ? "1 photo chosen" : `${chosen.length} photos chosen`;
}

function pickerChip(box, tile) {
  const chip = document.createElement("li");
  chip.dataset.pickedPhoto = tile.dataset.photoId;
  const image = document.createElement("img");
  image.src = tile.dataset.thumbnail;
  image.alt = tile.querySelector("img")?.alt || "";
  const input = document.createElement("input");
  input.type = "hidden";
  input.name = box.dataset.name;
  input.value = tile.dataset.photoId;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "link";
  remove.dataset.action = "unpick";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove ${image.alt || "this photo"}`);
  chip.append(image, input, remove);
  return chip;
}

function pickerToggle(box, tile) {
  const chip = [...box.querySelectorAll("[data-picked-photo]")].find((el) => el.dataset.pickedPhoto === tile.dataset.photoId);
  if (chip) chip.remove();
  else box.querySelector("[data-picked-list]").append(pickerChip(box, tile));
}

function pickerSet(opener, box, tile) {
  box.querySelector('input[type="hidden"]').value = tile.dataset.photoId;
  const preview = box.querySelector("img[data-preview]");
  preview.src = tile.dataset.thumbnail;
  preview.hidden = false;
  opener.textContent = opener.dataset.pickedLabel;
  box.querySelector(".error")?.remove();
}

document.addEventListener("click", (event) => {
  const control = event.target.closest("[data-action]");
  const dialog = pickerDialog();
  if (!control || !dialog) return;
  const action = control.dataset.action;
  if (action === "pick-photo") {
    // htmx fills the body with this target's tiles; until then, a spinner rather than the other target's.
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    dialog.querySelector("#picker-body").replaceChildren(spinner);
    dialog.querySelector("#picker-title").textContent = control.dataset.title;
    pickerOpener = control;
    dialog.querySelector("[data-picker-several]").hidden = !("several" in (control.closest(".picked")?.dataset || {}));
    dialog.showModal();
    pickerMarkTiles();
  } else if (action === "close-picker") {
    dialog.close();
  } else if (action === "unpick") {
    control.closest("[data-picked-photo]").remove();
  } else if (action === "picked") {
    const found = pickerBox();
    if (!found) return;
    if ("several" in found.box.dataset) {
      pickerToggle(found.box, control);
      pickerMarkTiles();
    } else {
      pickerSet(found.opener, found.box, control);
      dialog.close();
    }
  }
});

document.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id === "picker-body") pickerMarkTiles();
});
