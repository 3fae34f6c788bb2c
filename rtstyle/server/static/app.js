// rtstyle web page: style gallery, image and video uploads, and the live camera.
// Plain browser JavaScript, no build step. The API it uses is documented at /docs.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  styles: [],
  style: null,          // the chosen style's name
  painting: null,       // File: the painting for a needs_style_image style
  input: null,          // { file, kind: "image" | "video" }
  job: null,            // id of the running video job
  outputUrl: null,
  live: null,           // the live session, while the camera runs
};

// ---------- helpers ----------

function setMessage(element, text, isError = false) {
  element.textContent = text || "";
  element.classList.toggle("error", Boolean(isError));
}

async function problem(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

function megabytes(bytes) { return `${Math.round(bytes / 1024 / 1024)} MB`; }

function currentStyle() { return state.styles.find((s) => s.name === state.style); }

function kindOf(file) {
  if (file.type.startsWith("image/")) return "image";
  if (file.type.startsWith("video/")) return "video";
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  if (["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"].includes(ext)) return "image";
  if (["mp4", "mov", "mkv", "webm", "avi", "m4v"].includes(ext)) return "video";
  return null;
}

function styleForm(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("style", state.style);
  form.append("strength", $("strength").value);
  if ($("max-side").value) form.append("max_side", $("max-side").value);
  form.append("preserve_color", $("preserve-color").value);
  if ($("photoreal").checked) form.append("photoreal", "true");
  const style = currentStyle();
  if (style && style.needs_style_image && state.painting) form.append("style_image", state.painting);
  return form;
}

// ---------- styles ----------

function renderGallery() {
  const gallery = $("gallery");
  gallery.replaceChildren();
  const live = !$("live-tab").hidden;
  for (const style of state.styles) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "card";
    card.setAttribute("role", "option");
    card.dataset.style = style.name;
    card.setAttribute("aria-selected", String(style.name === state.style));
    card.disabled = live && style.needs_style_image;
    if (card.disabled) card.title = "paints from an uploaded painting: images and videos only";
    let thumb;
    if (style.image_url) {
      thumb = document.createElement("img");
      thumb.src = style.image_url;
      thumb.alt = `${style.name}: photo, painting, result`;
      thumb.loading = "lazy";
    } else {
      thumb = document.createElement("div");
      thumb.textContent = style.needs_style_image ? "any painting" : style.name;
    }
    thumb.classList.add("thumb");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = style.needs_style_image ? `${style.name} (any painting)` : style.name;
    const painting = document.createElement("div");
    painting.className = "painting";
    painting.textContent = style.painting || (style.needs_style_image
      ? "paints like the picture you give it" : style.origin);
    card.append(thumb, name, painting);
    card.addEventListener("click", () => chooseStyle(style.name));
    gallery.append(card);
  }
  $("painting-picker").hidden = !(currentStyle() && currentStyle().needs_style_image) || live;
}

function chooseStyle(name) {
  state.style = name;
  // a style's own default strength (the any-painting model recommends less than 1)
  const chosen = currentStyle();
  if (chosen && chosen.default_strength !== undefined) {
    $("strength").value = chosen.default_strength;
    $("strength-value").textContent = Number(chosen.default_strength).toFixed(2);
    if (state.live) state.live.send({ type: "strength", value: Number(chosen.default_strength) });
  }
  renderGallery();
  if (state.live) state.live.send({ type: "style", style: name });
  else settingsChanged();
}

async function loadStyles() {
  const [info, listing] = await Promise.all([
    fetch("/api/info").then((r) => (r.ok ? r.json() : Promise.reject(r))),
    fetch("/api/styles").then((r) => (r.ok ? r.json() : Promise.reject(r))),
  ]);
  state.info = info;
  state.styles = listing.styles;
  const preferred = state.styles.find((s) => s.aliases.includes("monet")) ||
    state.styles.find((s) => !s.needs_style_image) || state.styles[0];
  state.style = preferred ? preferred.name : null;
  const limits = info.limits;
  $("server-info").textContent = `rtstyle ${info.version} on ${info.device}`;
  $("limits").textContent = `Images up to ${(limits.max_pixels / 1e6).toFixed(1)} MP; ` +
    `videos up to ${limits.max_video_seconds} s; uploads up to ${megabytes(limits.max_upload_bytes)}.`;
  if (!state.styles.length) setMessage($("message"), "No styles are installed (see `rtstyle styles`).", true);
  renderGallery();
}

// ---------- images and videos ----------

function showInput(file, kind) {
  const view = $("input-view");
  view.replaceChildren();
  const url = URL.createObjectURL(file);
  const element = document.createElement(kind === "image" ? "img" : "video");
  element.src = url;
  if (kind === "video") { element.controls = true; element.muted = true; }
  element.id = "input-media";
  view.append(element);
  $("input-name").textContent = file.name;
  $("compare").hidden = false;
}

function showOutput(kind, url, downloadName) {
  const view = $("output-view");
  view.replaceChildren();
  const element = document.createElement(kind === "image" ? "img" : "video");
  element.id = "output-media";
  if (kind === "video") { element.controls = true; element.preload = "metadata"; }
  element.src = url;
  view.append(element);
  const link = $("download");
  link.href = url;
  link.download = downloadName || "";
  link.hidden = false;
}

function waiting(text) {
  const view = $("output-view");
  const note = document.createElement("span");
  note.className = "spinner";
  note.textContent = text;
  view.replaceChildren(note);
  $("download").hidden = true;
}

function filenameFrom(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(header);
  return match ? match[1] : fallback;
}

async function stylizeImage(file) {
  waiting("painting…");
  setMessage($("message"), "");
  const started = performance.now();
  const response = await fetch("/api/stylize", { method: "POST", body: styleForm(file) });
  if (!response.ok) {
    waiting("");
    setMessage($("message"), await problem(response), true);
    return;
  }
  const blob = await response.blob();
  if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
  state.outputUrl = URL.createObjectURL(blob);
  showOutput("image", state.outputUrl, filenameFrom(response, "stylized.png"));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  setMessage($("message"), `${response.headers.get("X-Rtstyle-Style")} · ` +
    `${response.headers.get("X-Rtstyle-Size")} · ${seconds} s`);
}

function upload(url, form, onProgress) {
  // XMLHttpRequest, not fetch: it reports upload progress, which a large video needs.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the upload failed (connection lost?)"));
    xhr.send(form);
  });
}

function showJob(status) {
  const progress = $("job-progress");
  progress.value = status.progress;
  let text = status.state;
  if (status.state === "running") {
    text = `painting ${Math.round(status.progress * 100)}%`;
    if (status.fps) text += ` · ${status.fps.toFixed(1)} fps`;
    if (status.eta_s != null) text += ` · ${Math.ceil(status.eta_s)} s left`;
  } else if (status.state === "queued") {
    text = "queued (waiting for the jobs before it)";
  }
  $("job-text").textContent = text;
}

async function stylizeVideo(file) {
  waiting("uploading…");
  setMessage($("message"), "");
  $("rerun").hidden = true;
  $("job").hidden = false;
  $("job-cancel").hidden = true;
  $("job-text").textContent = "uploading 0%";
  let xhr;
  try {
    xhr = await upload("/api/jobs", styleForm(file), (f) => {
      $("job-progress").value = f;
      $("job-text").textContent = `uploading ${Math.round(f * 100)}%`;
    });
  } catch (error) {
    $("job").hidden = true;
    setMessage($("message"), error.message, true);
    return;
  }
  if (xhr.status !== 202) {
    $("job").hidden = true;
    waiting("");
    const detail = xhr.response && xhr.response.detail;
    setMessage($("message"), detail || `${xhr.status} ${xhr.statusText}`, true);
    return;
  }
  const job = xhr.response;
  state.job = job.id;
  $("job-cancel").hidden = false;
  waiting("painting…");
  showJob(job);
  pollJob(job.id);
}

async function pollJob(id) {
  while (state.job === id) {
    const response = await fetch(`/api/jobs/${id}`);
    if (!response.ok) {
      setMessage($("message"), await problem(response), true);
      break;
    }
    const status = await response.json();
    showJob(status);
    if (status.state === "done") {
      showOutput("video", status.result_url, "");
      const link = $("download");
      link.download = `${(state.input.file.name.replace(/\.[^.]*$/, "") || "video")}-${state.style}.mp4`;
      setMessage($("message"), `${status.style} · ${status.size.join("x")} · ` +
        `${status.frames_written} frames${status.has_audio ? " · audio kept" : ""}`);
      break;
    }
    if (status.state === "failed") {
      waiting("");
      setMessage($("message"), `the video failed: ${status.error}`, true);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (state.job === id) {
    state.job = null;
    $("job").hidden = true;
  }
}

async function cancelJob() {
  const id = state.job;
  if (!id) return;
  state.job = null;
  $("job").hidden = true;
  await fetch(`/api/jobs/${id}`, { method: "DELETE" });
  waiting("");
  setMessage($("message"), "cancelled");
}

async function run() {
  if (!state.input || !state.style) return;
  const style = currentStyle();
  if (style && style.needs_style_image && !state.painting) {
    setMessage($("message"), "choose the painting to paint like (above)", true);
    return;
  }
  if (state.input.kind === "image") await stylizeImage(state.input.file);
  else await stylizeVideo(state.input.file);
}

function takeFile(file) {
  if (!file) return;
  const kind = kindOf(file);
  if (!kind) {
    setMessage($("message"), `${file.name}: not an image or a video`, true);
    return;
  }
  if (state.info && file.size > state.info.limits.max_upload_bytes) {
    setMessage($("message"), `${file.name} is ${megabytes(file.size)}; this server takes up to ` +
      `${megabytes(state.info.limits.max_upload_bytes)}`, true);
    return;
  }
  if (state.job) cancelJob();
  state.input = { file, kind };
  showInput(file, kind);
  run().catch((error) => setMessage($("message"), error.message, true));
}

let rerunTimer = null;
function settingsChanged() {
  // Images are quick: paint again when a setting changes. Videos wait for a click.
  if (!state.input) return;
  if (state.input.kind === "image") {
    clearTimeout(rerunTimer);
    rerunTimer = setTimeout(() => run().catch((e) => setMessage($("message"), e.message, true)), 250);
  } else if (!state.job) {
    $("rerun").hidden = false;
  }
}

// ---------- live camera ----------

const MAX_IN_FLIGHT = 2;     // frames sent and not yet answered (or overtaken)
const STALL_MS = 5000;       // no answer this long: stop waiting for the ones in flight

class LiveSession {
  constructor() {
    this.sent = [];          // clock readings of frames in flight
    this.received = [];      // arrival times of painted frames, for the frame rate
    this.rtts = [];
    this.style = null;       // the style the server last confirmed
    this.lastReply = performance.now();
    this.busy = false;
    this.frames = 0;
    this.serverStats = null;
    this.canvas = document.createElement("canvas");
    this.output = $("live-output");
  }

  async start() {
    setMessage($("live-message"), "asking for the camera…");
    this.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    const video = $("live-local");
    video.srcObject = this.stream;
    await video.play();
    this.video = video;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ style: state.style, strength: $("strength").value });
    this.ws = new WebSocket(`${scheme}://${location.host}/api/live?${query}`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      setMessage($("live-message"), "connected; warming up…");
      this.send({ type: "preserve_color", value: $("preserve-color").value });
      this.pump();
    };
    this.ws.onmessage = (event) => this.receive(event);
    this.ws.onclose = (event) => {
      if (state.live === this) stopLive(event.reason || (event.code !== 1000 ? `closed (${event.code})` : ""));
    };
    this.scheduleNext();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  scheduleNext() {
    if (state.live !== this) return;
    if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(() => this.onCameraFrame());
    else requestAnimationFrame(() => this.onCameraFrame());
  }

  onCameraFrame() {
    this.pump();
    this.scheduleNext();
  }

  inFlight() {
    if (performance.now() - this.lastReply > STALL_MS) {
      this.sent = [];
      this.lastReply = performance.now();
    }
    return this.sent.length;
  }

  pump() {
    // Send the camera's newest picture when fewer than MAX_IN_FLIGHT are unanswered.
    if (this.busy || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.inFlight() >= MAX_IN_FLIGHT || !this.video.videoWidth) return;
    this.busy = true;
    const maxSide = state.info.limits.live_max_side;
    const scale = Math.min(1, maxSide / Math.max(this.video.videoWidth, this.video.videoHeight));
    this.canvas.width = Math.round(this.video.videoWidth * scale);
    this.canvas.height = Math.round(this.video.videoHeight * scale);
    this.canvas.getContext("2d").drawImage(this.video, 0, 0, this.canvas.width, this.canvas.height);
    const clock = performance.now();
    this.canvas.toBlob((jpeg) => {
      this.busy = false;
      if (!jpeg || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const header = new DataView(new ArrayBuffer(8));
      header.setFloat64(0, clock, true);
      this.ws.send(new Blob([header.buffer, jpeg]));
      this.sent.push(clock);
    }, "image/jpeg", 0.8);
  }

  receive(event) {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        this.showStyle(message.style);
        setMessage($("live-message"), `live: ${message.style} · ${message.size.join("x")} · ` +
          `${message.device} ${message.backend || ""}`);
      } else if (message.type === "style") {
        this.showStyle(message.style);
        setMessage($("live-message"), `live: ${message.style}`);
      } else if (message.type === "status") {
        // a style's engine reports its warm-up after the switch: keep the style in view
        setMessage($("live-message"), this.style ? `live: ${this.style} · ${message.message}`
          : message.message);
      } else if (message.type === "stats") {
        this.serverStats = message;
      } else if (message.type === "error") {
        setMessage($("live-message"), message.message, true);
      }
      return;
    }
    const now = performance.now();
    const clock = new DataView(event.data, 0, 8).getFloat64(0, true);
    this.sent = this.sent.filter((t) => t > clock);   // answered, or dropped by the server
    this.lastReply = now;
    this.rtts.push(now - clock);
    if (this.rtts.length > 30) this.rtts.shift();
    this.received.push(now);
    while (this.received.length && now - this.received[0] > 2000) this.received.shift();
    const blob = new Blob([new Uint8Array(event.data, 8)], { type: "image/jpeg" });
    createImageBitmap(blob).then((bitmap) => {
      if (this.output.width !== bitmap.width) this.output.width = bitmap.width;
      if (this.output.height !== bitmap.height) this.output.height = bitmap.height;
      this.output.getContext("2d").drawImage(bitmap, 0, 0);
      bitmap.close();
      this.frames += 1;
      this.output.dataset.frames = String(this.frames);
      this.showStats();
    });
    this.pump();
  }

  showStyle(name) {
    this.style = name;
    $("live-message").dataset.style = name;
  }

  showStats() {
    const span = this.received.length > 1 ? this.received[this.received.length - 1] - this.received[0] : 0;
    const fps = span > 0 ? (this.received.length - 1) / (span / 1000) : 0;
    const sorted = [...this.rtts].sort((a, b) => a - b);
    const rtt = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
    let text = `${fps.toFixed(1)} fps · ${Math.round(rtt)} ms round trip`;
    if (this.serverStats) text += ` · ${this.serverStats.dropped} dropped`;
    $("live-stats").textContent = text;
    $("live-stats").dataset.fps = fps.toFixed(2);
    $("live-stats").dataset.rttMs = rtt.toFixed(1);
  }

  stop() {
    if (this.ws) this.ws.close(1000);
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    $("live-local").srcObject = null;
  }
}

async function startLive() {
  if (state.live || !state.style) return;
  const style = currentStyle();
  if (style && style.needs_style_image) {
    setMessage($("live-message"), "choose a style without a painting for the live camera", true);
    return;
  }
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  state.live = new LiveSession();
  try {
    await state.live.start();
  } catch (error) {
    stopLive(`no camera: ${error.message}`);
  }
}

function stopLive(reason) {
  if (state.live) state.live.stop();
  state.live = null;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
  setMessage($("live-message"), reason || "stopped", Boolean(reason));
}

// ---------- wiring ----------

function showTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  $("files-tab").hidden = name !== "files";
  $("live-tab").hidden = name !== "live";
  $("size-control").hidden = name === "live";
  if (name !== "live" && state.live) stopLive();
  renderGallery();
}

function wire() {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => showTab(tab.dataset.tab));
  }
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = Number($("strength").value).toFixed(2);
    if (state.live) state.live.send({ type: "strength", value: Number($("strength").value) });
  });
  $("strength").addEventListener("change", settingsChanged);
  $("preserve-color").addEventListener("change", () => {
    if (state.live) state.live.send({ type: "preserve_color", value: $("preserve-color").value });
    settingsChanged();
  });
  $("photoreal").addEventListener("change", settingsChanged);
  $("max-side").addEventListener("change", settingsChanged);
  $("painting-input").addEventListener("change", (e) => {
    state.painting = e.target.files[0] || null;
    if (state.painting) $("painting-preview").src = URL.createObjectURL(state.painting);
    settingsChanged();
  });
  $("file-input").addEventListener("change", (e) => takeFile(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    takeFile(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter") $("file-input").click(); });
  $("rerun").addEventListener("click", () => { $("rerun").hidden = true; run(); });
  $("job-cancel").addEventListener("click", cancelJob);
  $("live-start").addEventListener("click", startLive);
  const mirror = () => $("live-tab").classList.toggle("mirrored", $("live-mirror").checked);
  $("live-mirror").addEventListener("change", mirror);
  mirror();
  $("live-stop").addEventListener("click", () => stopLive());
}

wire();
loadStyles().catch(async (error) => {
  const text = error instanceof Response ? await problem(error) : String(error);
  setMessage($("message"), `cannot reach the server: ${text}`, true);
});
