// The upload page: the chosen (or dropped) file, and its mask if given, go to /analyse as one
// form; the answer's overlay and mask are shown and offered for download. Every text from the
// server is set as text, never as markup.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("form");
  const maxBytes = Number(form.dataset.maxBytes);
  const urls = [];

  function message(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = !text;
  }

  function blobUrl(base64, type) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], {type}));
    urls.push(url);
    return url;
  }

  function stem(name) {
    const base = (name || "upload").replace(/\.[^.]*$/, "");
    return base.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "upload";
  }

  function showPicture(kind, base64, mime, name) {
    const image = $(kind === "overlay" ? "overlay" : "mask-out");
    const video = $(kind + "-video");
    const link = $(kind + "-link");
    const url = blobUrl(base64, mime);
    const still = mime === "image/png";
    image.hidden = !still;
    video.hidden = still;
    if (still) image.src = url; else video.src = url;
    link.href = url;
    link.download = `${stem(name)}_${kind}.${still ? "png" : "mp4"}`;
    return still ? image.decode().catch(() => undefined) : Promise.resolve();
  }

  function summary(result) {
    const parts = [];
    if (result.kind === "image") {
      parts.push(`${result.width}×${result.height}`);
      parts.push(result.polyp ? "polyp found" : "no polyp found");
      parts.push(`mask covers ${(100 * result.area).toFixed(1)} %`);
      if (result.dice !== null) parts.push(`Dice ${result.dice.toFixed(3)}, IoU ${result.iou.toFixed(3)} against the uploaded mask`);
    } else {
      parts.push(`${result.frames} frames at ${result.fps.toFixed(1)} fps, ${result.width}×${result.height}`);
      parts.push(`polyp indicator on in ${result.polyp_frames} of them`);
    }
    parts.push(`answered in ${Math.round(result.ms)} ms`);
    return parts.join(" · ");
  }

  async function send() {
    const file = $("file").files[0];
    const mask = $("mask").files[0];
    if (!file) return message("Choose an image or a clip first.");
    const size = file.size + (mask ? mask.size : 0);
    if (size > maxBytes) {
      return message(`The upload is ${Math.round(size / 1e6)} MB; this server takes up to ${maxBytes / 1e6} MB.`);
    }
    const body = new FormData();
    body.append("file", file);
    if (mask) body.append("mask", mask);
    message("");
    $("send").disabled = true;
    $("result").hidden = true;
    try {
      const answer = await fetch("/analyse", {method: "POST", body});
      const result = (answer.headers.get("content-type") || "").startsWith("application/json") ? await answer.json() : null;
      if (!answer.ok || result === null) {
        message(result && result.error ? result.error : `The server could not answer (HTTP ${answer.status}).`);
        return;
      }
      while (urls.length) URL.revokeObjectURL(urls.pop());
      const still = result.kind === "image";
      const shown = [
        showPicture("overlay", still ? result.overlay_png : result.overlay_mp4, still ? "image/png" : "video/mp4", file.name),
        showPicture("mask", still ? result.mask_png : result.mask_mp4, still ? "image/png" : "video/mp4", file.name),
      ];
      $("summary").textContent = summary(result);
      $("result").hidden = false;
      await Promise.all(shown);
      document.body.dataset.answered = String(Number(document.body.dataset.answered || 0) + 1);
    } catch (error) {
      message(`The upload failed: ${error.message}`);
    } finally {
      $("send").disabled = false;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) {
      $("file").files = event.dataTransfer.files;
      send();
    }
  });
})();
