// genrekit page: upload files to /v1/predict and stream sound to /v1/stream. No libraries, no build step.
"use strict";

const PARALLEL_UPLOADS = 2;
const TOKEN_KEY = "genrekit-token";
const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", queue: [], running: 0, live: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const percent = (p) => `${(100 * p).toFixed(1)}%`;

function clock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

// ---- model line and token -------------------------------------------------------------------

async function loadModel() {
  const answer = await fetch("/v1/model", { headers: authHeaders() });
  if (answer.status === 401) {
    $("token-box").hidden = false;
    $("model-line").textContent = "This server needs a token.";
    return;
  }
  const model = await answer.json();
  $("token-box").hidden = true;
  const cv = model.metrics && model.metrics.cv_accuracy;
  const figure = cv ? `, ${percent(cv.mean)} accuracy (${model.metrics.protocol})` : "";
  $("model-line").textContent = `Model ${model.id}: ${model.classes.length} genres${figure}.`;
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  loadModel();
});

// ---- prediction cards -----------------------------------------------------------------------

function bars(probabilities) {
  const sorted = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  const list = el("ul", { class: "bars", "aria-label": "probability of each genre" });
  sorted.forEach(([genre, p], i) => {
    const fill = el("div", { class: "fill" });
    fill.style.width = percent(p);
    const label = i === 0 ? `${genre} (top)` : genre;
    list.append(el("li", { class: i === 0 ? "top" : "" },
      el("span", { class: "genre", text: label }), el("div", { class: "track" }, fill),
      el("span", { class: "value", text: percent(p) })));
  });
  return list;
}

function verdict(result) {
  const line = el("p", { class: "verdict" });
  if (result.genre === "uncertain") {
    line.append("Uncertain — best guess ", el("strong", { text: result.best_guess }),
      ` (${percent(result.probability)})`);
  } else {
    line.append("Genre: ", el("strong", { text: result.genre }), ` (${percent(result.probability)})`);
  }
  return line;
}

function topGenre(probabilities) {
  return Object.entries(probabilities).sort((a, b) => b[1] - a[1])[0];
}

function timeline(result) {
  if (result.windows.length < 2) return null;
  const strip = el("div", { class: "timeline", role: "img",
    "aria-label": "genre of each 30-second window" });
  const rows = el("ol", { class: "history" });
  for (const w of result.windows) {
    const [genre, p] = topGenre(w.probabilities);
    strip.append(el("span", { title: `${clock(w.start)}–${clock(w.end)} ${genre}`, text: genre }));
    rows.append(el("li", { text: `${clock(w.start)}–${clock(w.end)}: ${genre} (${percent(p)})` }));
  }
  const details = el("details", {}, el("summary", { text: `${result.windows.length} windows of 30 s` }), rows);
  return el("div", { class: "windows" }, el("p", { class: "note", text: "Timeline:" }), strip, details);
}

function showResult(card, result) {
  const parts = [
    verdict(result),
    result.familiar ? null : el("p", { class: "note",
      text: "Note: this sound is unlike the music the model was trained on." }),
    el("p", { class: "note muted", text: `Length ${clock(result.duration)}` }),
    bars(result.probabilities),
    timeline(result)];
  card.querySelector(".body").replaceChildren(...parts.filter(Boolean));
  card.dataset.state = "done";
  card.dataset.genre = result.genre;
}

function showError(card, message) {
  card.classList.add("error");
  card.dataset.state = "error";
  card.querySelector(".body").replaceChildren(
    el("p", { class: "verdict", role: "alert", text: `Error: ${message}` }));
}

function newCard(file) {
  const progress = el("progress", { max: "100", value: "0", "aria-label": `uploading ${file.name}` });
  const card = el("article", { class: "card", "data-state": "uploading" },
    el("h3", { text: file.name }),
    el("div", { class: "body" }, el("p", { class: "note status", text: "Uploading…" }), progress));
  $("cards").prepend(card);
  return card;
}

function upload(file, card) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/v1/predict?top_k=3&filename=${encodeURIComponent(file.name)}`);
    for (const [key, value] of Object.entries(authHeaders())) request.setRequestHeader(key, value);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    const progress = card.querySelector("progress");
    const status = card.querySelector(".status");
    request.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      progress.value = (100 * event.loaded) / event.total;
      status.textContent = `Uploading… ${Math.round(progress.value)}%`;
    };
    request.upload.onload = () => {
      status.textContent = "Analysing…";
      progress.removeAttribute("value");
      card.dataset.state = "analysing";
    };
    request.onload = () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch (_) { answer = null; }
      if (request.status === 200 && answer) showResult(card, answer);
      else showError(card, (answer && answer.error) || `the server answered ${request.status}`);
      if (request.status === 401) loadModel();
      resolve();
    };
    request.onerror = () => { showError(card, "the server could not be reached"); resolve(); };
    request.send(file);
  });
}

function pump() {
  while (state.running < PARALLEL_UPLOADS && state.queue.length) {
    const [file, card] = state.queue.shift();
    state.running += 1;
    upload(file, card).then(() => { state.running -= 1; pump(); });
  }
}

function addFiles(files) {
  for (const file of files) state.queue.push([file, newCard(file)]);
  pump();
}

$("files").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  addFiles(event.dataTransfer.files);
});

// ---- live mode --------------------------------------------------------------------------------

function liveCard(source) {
  const card = $("live");
  card.hidden = false;
  card.dataset.state = "connecting";
  card.replaceChildren(el("h3", { text: `Live: ${source}` }),
    el("p", { class: "verdict status", text: "Waiting for 3 s of sound…" }),
    el("div", { class: "live-facts" }), el("div", { class: "live-bars" }),
    el("ol", { class: "history", reversed: "" }));
  return card;
}

function liveError(message) {
  const card = $("live");
  card.querySelector(".status").textContent = `Error: ${message}`;
  card.dataset.state = "error";
}

function showUpdate(live, update) {
  const card = $("live");
  if (update.type === "error") {
    liveError(update.error);
    return;
  }
  if (update.type !== "update") return;
  const sent = live.sent.find(([total]) => total >= Math.round(update.audio_seconds * live.rate));
  const roundTrip = sent ? performance.now() - sent[1] : NaN;
  card.dataset.state = "updating";
  card.dataset.genre = update.genre;
  card.dataset.updates = String(Number(card.dataset.updates || 0) + 1);
  card.querySelector(".status").replaceWith(Object.assign(verdict(update), { className: "verdict status" }));
  card.querySelector(".live-facts").replaceChildren(
    el("span", { text: `last ${Math.round(update.window_seconds)} s of ${clock(update.audio_seconds)} heard` }),
    el("span", { class: "latency", text: `latency ${Math.round(update.latency_ms)} ms on the server` +
      (Number.isFinite(roundTrip) ? `, ${Math.round(roundTrip)} ms round trip` : "") }));
  card.querySelector(".live-bars").replaceChildren(bars(update.probabilities));
  const history = card.querySelector(".history");
  history.prepend(el("li", { text: `${clock(update.audio_seconds)}: ${update.genre}` +
    (update.genre === "uncertain" ? ` (best guess ${update.best_guess})` : "") +
    ` — ${Math.round(update.latency_ms)} ms` }));
  while (history.children.length > 5) history.lastChild.remove();
  live.sent = live.sent.filter(([total]) => total > Math.round(update.audio_seconds * live.rate));
}

function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  return `${scheme}://${location.host}/v1/stream${query}`;
}

async function startLive(source, connectSource) {
  stopLive();
  const card = liveCard(source);
  const context = new AudioContext();
  const live = { context, rate: context.sampleRate, total: 0, sent: [], nodes: [], stream: null };
  state.live = live;
  $("live-stop").disabled = false;
  const socket = new WebSocket(streamUrl());
  live.socket = socket;
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      card.dataset.state = "streaming";
      connectSource(live);
    } else showUpdate(live, message);
  };
  socket.onclose = (event) => {
    if (state.live === live && card.dataset.state !== "error" && !live.stopped) {
      card.querySelector(".status").textContent =
        `Connection closed${event.reason ? `: ${event.reason}` : ""}.`;
    }
    if (state.live === live) stopLive();
  };
  socket.onopen = () => socket.send(JSON.stringify({ sample_rate: live.rate, encoding: "pcm_s16le", top_k: 3 }));
}

function sender(live) {
  // ScriptProcessorNode: works without a secure context or an extra module file.
  const processor = live.context.createScriptProcessor(4096, 1, 1);
  processor.onaudioprocess = (event) => {
    if (live.ended || live.socket.readyState !== WebSocket.OPEN) return;
    const samples = event.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i += 1) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
    live.socket.send(pcm.buffer);
    live.total += samples.length;
    live.sent.push([live.total, performance.now()]);
  };
  const mute = live.context.createGain();
  mute.gain.value = 0;
  processor.connect(mute).connect(live.context.destination);
  live.nodes.push(processor, mute);
  return processor;
}

$("live-mic").addEventListener("click", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    liveCard("microphone");
    liveError("the microphone needs https:// or localhost; try Play a file");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (error) {
    liveCard("microphone");
    liveError(`no microphone: ${error.message}`);
    return;
  }
  await startLive("microphone", (live) => {
    live.stream = stream;
    const input = live.context.createMediaStreamSource(stream);
    input.connect(sender(live));
    live.nodes.push(input);
  });
});

$("live-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  await startLive(file.name, async (live) => {
    let buffer;
    try {
      buffer = await live.context.decodeAudioData(await file.arrayBuffer());
    } catch (error) {
      liveError(`this browser cannot play ${file.name}`);
      return;
    }
    const player = live.context.createBufferSource();
    player.buffer = buffer;
    player.connect(sender(live));
    player.connect(live.context.destination);
    player.onended = () => {
      live.ended = true; // stop sending: silence after the end would count as sound
      $("live").querySelector("h3").textContent = `Live: ${file.name} (ended)`;
    };
    player.start();
    live.nodes.push(player);
  });
});

function stopLive() {
  const live = state.live;
  if (!live) return;
  live.stopped = true;
  state.live = null;
  for (const node of live.nodes) node.disconnect();
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  if (live.socket.readyState <= WebSocket.OPEN) live.socket.close();
  live.context.close();
  $("live-stop").disabled = true;
}

$("live-stop").addEventListener("click", stopLive);

loadModel().catch(() => { $("model-line").textContent = "The server cannot be reached."; });
