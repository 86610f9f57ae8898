// The inpainting mask painter: paint on the start photo where it should be repainted (brush, eraser, size,
// invert, clear, undo, zoom; mouse, pen or touch through pointer events), then save the mask as a photo of
// category "mask" (white = repaint, black = keep, as the app's API takes masks) and put it in the form.
"use strict";

(() => {
  const UNDO_LIMIT = 30;
  const PAINT = [255, 59, 48]; // how painted parts show over the photo; saved as white
  let state = null;

  const dialog = () => document.getElementById("mask-painter");
  const form = () => document.getElementById("step-form");
  const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

  function status(text, isError = false) {
    const box = dialog().querySelector("[data-mask-status]");
    box.textContent = text;
    box.classList.toggle("error", isError);
  }

  function open() {
    const initId = form()?.querySelector('input[name="init_photo_id"]')?.value;
    if (!initId) return;
    const painter = dialog();
    const photo = painter.querySelector("img.mask-photo");
    const canvas = painter.querySelector("canvas.mask-canvas");
    status("Loading the photo…");
    painter.showModal();
    photo.onload = () => {
      canvas.width = photo.naturalWidth;
      canvas.height = photo.naturalHeight;
      state = { canvas, context: canvas.getContext("2d", { willReadFrequently: true }), undo: [], zoom: 1, drawing: null };
      fit();
      status("Paint where the image should change.");
      updateButtons();
    };
    photo.onerror = () => status("The photo could not be loaded.", true);
    photo.src = `/api/photos/${initId}/display`;
  }

  // The stage shows the photo at `zoom` times the size that fits the dialog.
  function fit() {
    const stage = dialog().querySelector(".mask-stage");
    const photo = dialog().querySelector("img.mask-photo");
    const fitScale = Math.min(stage.clientWidth / photo.naturalWidth, (window.innerHeight * 0.6) / photo.naturalHeight, 1);
    const width = Math.round(photo.naturalWidth * fitScale * state.zoom);
    const height = Math.round(photo.naturalHeight * fitScale * state.zoom);
    for (const element of [photo, state.canvas]) {
      element.style.width = `${width}px`;
      element.style.height = `${height}px`;
    }
    dialog().querySelector(".mask-layers").style.width = `${width}px`;
    dialog().querySelector("[data-mask-zoom-label]").textContent = `${Math.round(state.zoom * 100)}%`;
  }

  function snapshot() {
    const { context, canvas, undo } = state;
    undo.push(context.getImageData(0, 0, canvas.width, canvas.height));
    if (undo.length > UNDO_LIMIT) undo.shift();
    updateButtons();
  }

  function updateButtons() {
    dialog().querySelector('[data-mask="undo"]').disabled = !state || state.undo.length === 0;
  }

  function point(event) {
    const rect = state.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * state.canvas.width,
      y: ((event.clientY - rect.top) / rect.height) * state.canvas.height,
    };
  }

  function tool() {
    return dialog().querySelector('input[name="mask-tool"]:checked')?.value || "brush";
  }

  function brushSize() {
    // The slider is in screen pixels; the canvas has the photo's own.
    const rect = state.canvas.getBoundingClientRect();
    return Number(dialog().querySelector('input[name="mask-size"]').value) * (state.canvas.width / rect.width);
  }

  function stroke(from, to) {
    const { context } = state;
    context.globalCompositeOperation = tool() === "eraser" ? "destination-out" : "source-over";
    context.strokeStyle = `rgb(${PAINT.join(",")})`;
    context.fillStyle = context.strokeStyle;
    context.lineWidth = brushSize();
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  function invert() {
    snapshot();
    const { context, canvas } = state;
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    const pixels = image.data;
    for (let i = 0; i < pixels.length; i += 4) {
      const painted = pixels[i + 3] > 127;
      [pixels[i], pixels[i + 1], pixels[i + 2]] = PAINT;
      pixels[i + 3] = painted ? 0 : 255;
    }
    context.putImageData(image, 0, 0);
  }

  // The mask as the API takes it: white where painted, black elsewhere, the photo's size.
  function maskBlob() {
    const { context, canvas } = state;
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    const pixels = image.data;
    let painted = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      const value = pixels[i + 3] > 127 ? 255 : 0;
      painted += value ? 1 : 0;
      pixels[i] = pixels[i + 1] = pixels[i + 2] = value;
      pixels[i + 3] = 255;
    }
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    out.getContext("2d").putImageData(image, 0, 0);
    return new Promise((resolve) => out.toBlob((blob) => resolve({ blob, painted }), "image/png"));
  }

  async function save() {
    const { blob, painted } = await maskBlob();
    if (!painted) {
      status("Paint something first: an empty mask repaints nothing.", true);
      return;
    }
    status("Saving the mask…");
    const body = new FormData();
    body.append("file", blob, "mask.png");
    body.append("image_category", "mask");
    let response;
    try {
      response = await fetch("/api/photos/", {
        method: "POST",
        body,
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch {
      status("The server did not answer; the mask was not saved.", true);
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      status(answer.message || `The mask was not saved (${response.status}).`, true);
      return;
    }
    const f = form();
    f.querySelector('input[name="mask_photo_id"]').value = answer.id;
    const preview = f.querySelector('img[data-preview="mask"]');
    preview.src = `/api/photos/${answer.id}/thumbnail`;
    preview.hidden = false;
    const opener = f.querySelector('[data-action="pick-photo"][data-target="mask"]');
    if (opener) opener.textContent = opener.dataset.pickedLabel;
    dialog().close();
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest('[data-action="paint-mask"]')) {
      open();
      return;
    }
    const control = event.target.closest("#mask-painter [data-mask]");
    if (!control || !state) {
      if (control?.dataset.mask === "cancel") dialog().close();
      return;
    }
    const action = control.dataset.mask;
    if (action === "cancel") dialog().close();
    else if (action === "save") save();
    else if (action === "invert") invert();
    else if (action === "clear") {
      snapshot();
      state.context.clearRect(0, 0, state.canvas.width, state.canvas.height);
    } else if (action === "undo" && state.undo.length) {
      state.context.putImageData(state.undo.pop(), 0, 0);
      updateButtons();
    } else if (action === "zoom-in" || action === "zoom-out") {
      state.zoom = Math.min(4, Math.max(1, state.zoom * (action === "zoom-in" ? 1.5 : 1 / 1.5)));
      fit();
    }
  });

  document.addEventListener("pointerdown", (event) => {
    if (!state || event.target !== state.canvas) return;
    event.preventDefault();
    try {
      // Keeps the stroke when the pointer leaves the canvas; a pointer the browser does not track cannot be held.
      state.canvas.setPointerCapture(event.pointerId);
    } catch {
      // painting goes on without it
    }
    snapshot();
    const at = point(event);
    state.drawing = { id: event.pointerId, last: at };
    stroke(at, at);
  });

  document.addEventListener("pointermove", (event) => {
    if (!state?.drawing || state.drawing.id !== event.pointerId) return;
    const at = point(event);
    stroke(state.drawing.last, at);
    state.drawing.last = at;
  });

  for (const type of ["pointerup", "pointercancel"]) {
    document.addEventListener(type, (event) => {
      if (state?.drawing?.id === event.pointerId) state.drawing = null;
    });
  }

  document.addEventListener("keydown", (event) => {
    if (!state || !dialog()?.open) return;
    if ((event.ctrlKey || event.metaKey) && event.key === "z" && state.undo.length) {
      event.preventDefault();
      state.context.putImageData(state.undo.pop(), 0, 0);
      updateButtons();
    }
  });

  window.addEventListener("resize", () => {
    if (state && dialog()?.open) fit();
  });
})();
