// The studio form's behaviour htmx does not cover: showing the fields of the chosen mode, live slider values,
// size presets, the seed field, inserting embeddings and trigger phrases, adding and removing ControlNet slots,
// and the outpaint sides an aspect ratio replaces (the photo picker is picker.js). Event delegation, so
// swapped-in parts just work.
"use strict";

function form() {
  return document.getElementById("step-form");
}

function syncForm() {
  const f = form();
  if (!f) return;
  const mode = f.querySelector('input[name="mode"]:checked')?.value || "txt2img";
  f.querySelectorAll("[data-mode-show]").forEach((el) => {
    const shown = el.dataset.modeShow.split(" ").includes(mode);
    el.hidden = !shown;
    el.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = !shown; });
  });
  // An aspect ratio to outpaint to stands for the sides: they are worked out from it.
  const ratio = f.querySelector('select[name="outpaint_aspect"]');
  if (ratio && !ratio.disabled) {
    f.querySelectorAll("[data-outpaint-side]").forEach((input) => { input.disabled = Boolean(ratio.value); });
  }
  // Nothing to generate with (no models, no InvokeAI to send to): the notice says why; it may clear by itself.
  // Not while htmx holds it disabled for a step being sent: the step panel's polls settle meanwhile.
  const generate = f.querySelector('button[type="submit"]');
  if (generate && !generate.hasAttribute("data-disabled-by-htmx")) {
    generate.disabled = Boolean(f.querySelector("[data-blocks-generate]"));
  }
  const seedMode = f.querySelector('input[name="seed_mode"]:checked')?.value;
  const seed = f.querySelector('input[name="seed"]');
  if (seed) seed.disabled = seedMode !== "fixed";
  const widthInput = f.querySelector('input[name="width"]');
  const width = widthInput?.value;
  const height = f.querySelector('input[name="height"]')?.value;
  f.querySelectorAll("[data-size]").forEach((chip) => {
    chip.classList.toggle("active", chip.dataset.size === `${width}x${height}`);
  });
  // The server refuses an image above the base's largest; the browser says so before the form is sent.
  const sizes = f.querySelector("[data-max-pixels]");
  if (sizes && widthInput) {
    const tooLarge = Number(width) * Number(height) > Number(sizes.dataset.maxPixels);
    widthInput.setCustomValidity(tooLarge ? sizes.dataset.tooLarge : "");
  }
}

// A range slider shows its value in the <output data-for=name> of the same form.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (input.name === "width" || input.name === "height") syncForm();
  if (input.type !== "range") return;
  const output = input.form?.querySelector(`output[data-for="${input.name}"]`);
  if (output) output.textContent = input.value;
});

document.addEventListener("change", (event) => {
  if (event.target.closest("#step-form")) syncForm();
});

document.addEventListener("click", (event) => {
  const chip = event.target.closest("#step-form [data-size]");
  if (chip) {
    const [width, height] = chip.dataset.size.split("x");
    form().querySelector('input[name="width"]').value = width;
    form().querySelector('input[name="height"]').value = height;
    syncForm();
    return;
  }
  const insert = event.target.closest("#step-form [data-insert]");
  if (insert) {
    // An embedding's <name> or a LoRA's trigger phrase, at the cursor of the prompt.
    const prompt = form().querySelector('textarea[name="prompt"]');
    const at = prompt.selectionStart ?? prompt.value.length;
    const before = prompt.value.slice(0, at);
    const text = (before && !before.endsWith(" ") ? " " : "") + insert.dataset.insert;
    prompt.value = before + text + prompt.value.slice(prompt.selectionEnd ?? at);
    prompt.focus();
    // As if typed: the prompt check looks at it again.
    prompt.dispatchEvent(new Event("input", { bubbles: true }));
    return;
  }
  const control = event.target.closest("[data-action]");
  if (!control) return;
  if (control.dataset.action === "add-controlnet") {
    addControlNet(control);
  } else if (control.dataset.action === "remove-controlnet") {
    removeControlNet(control);
  }
});

function addControlNet(button) {
  const fieldset = button.closest("fieldset");
  const slots = fieldset.querySelector(".controlnet-slots");
  if (slots.children.length >= Number(slots.dataset.max)) return;
  const slot = fieldset.querySelector("#controlnet-slot-template").content.firstElementChild.cloneNode(true);
  slots.append(slot);
  // Its picker button and upload field are htmx elements too.
  window.htmx?.process(slot);
  slot.querySelector("select")?.focus();
  syncSlots(fieldset);
}

function removeControlNet(button) {
  const fieldset = button.closest("fieldset");
  const slots = fieldset.querySelector(".controlnet-slots");
  const slot = button.closest(".controlnet-slot");
  if (slots.children.length > 1) {
    slot.remove();
  } else {
    // The last slot stays, emptied: it is where a ControlNet is chosen.
    slots.replaceChildren(fieldset.querySelector("#controlnet-slot-template").content.firstElementChild.cloneNode(true));
    window.htmx?.process(slots.firstElementChild);
  }
  fieldset.querySelector('[data-action="add-controlnet"]')?.focus();
  syncSlots(fieldset);
}

function syncSlots(fieldset) {
  const slots = fieldset.querySelector(".controlnet-slots");
  const add = fieldset.querySelector('[data-action="add-controlnet"]');
  if (add) add.disabled = slots.children.length >= Number(slots.dataset.max);
}

document.addEventListener("htmx:afterSettle", syncForm);
document.addEventListener("DOMContentLoaded", syncForm);

// A failed request to the server (not an error the server explained) must not leave the page silent.
document.addEventListener("htmx:sendError", () => {
  const box = document.getElementById("composer-error");
  if (box) box.innerHTML = '<p class="error">The server did not answer; check that Photo Studio is running.</p>';
});
