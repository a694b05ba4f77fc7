// latentlab explore: the page. Hand-written, no build step, no library, nothing fetched but this server's API.
//
// The whole state lives here and goes with every request (several tabs never mix). Rendering never queues stale
// frames: at most one request is in flight; changes made meanwhile only mark the state dirty, and when the answer
// arrives the latest state is sent (intermediate states are dropped).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const DEFAULTS = {
    seed: 0, space: "w", psi: 1, cutoff: null, noise: "const", attrs: {}, conditions: [], layers: "all",
    channels: [], mix: null, photo: null,
  };
  const SLIDER = 5; // the attribute sliders span -SLIDER..SLIDER
  const CHANNEL = 20; // the channel sliders span -CHANNEL..CHANNEL
  const MAX_SEED = 4294967295;
  const tab = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);

  let info = null;
  let state = clone(DEFAULTS);
  let photo = null; // {id, name, space} of the photo being edited
  let rid = 0;
  let inflight = false;
  let dirty = false;
  let reference = null; // scores of the unedited image of the current base (seed, space, psi, ...)
  let referenceKey = null;
  let lastCommand = "";

  function clone(x) { return JSON.parse(JSON.stringify(x)); }
  function round(x, digits) { const f = Math.pow(10, digits); return Math.round(x * f) / f; }
  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children || []) e.appendChild(c);
    return e;
  }

  // ------------------------------------------------------------------------------------------ server calls
  async function api(path, options) {
    const r = await fetch(path, options);
    const type = r.headers.get("Content-Type") || "";
    const doc = type.startsWith("application/json") ? await r.json() : null;
    if (!r.ok && !(doc && doc.superseded)) throw new Error((doc && doc.error) || r.status + " " + r.statusText);
    return { r, doc };
  }

  function payload(extra, from) {
    const s = clone(from || state);
    const attrs = {};
    for (const [k, v] of Object.entries(s.attrs)) if (v !== 0) attrs[k] = v;
    s.attrs = attrs;
    s.channels = s.channels.filter((c) => c.value !== 0);
    if (s.space !== "w+") s.layers = "all";
    return Object.assign(s, extra || {});
  }

  function baseKey() {
    return JSON.stringify([state.seed, state.photo, state.space, state.psi, state.cutoff, state.noise]);
  }

  function edited() {
    return Object.values(state.attrs).some((v) => v !== 0) || state.channels.some((c) => c.value !== 0) || !!state.mix;
  }

  function changed() {
    saveHash();
    dirty = true;
    document.body.dataset.busy = "1";
    pump();
  }

  async function pump() {
    if (inflight || !dirty) return;
    dirty = false;
    inflight = true;
    const key = baseKey();
    const wantRef = !!(edited() && referenceKey !== key && info.classifier);
    const body = payload({ rid: ++rid, tab: tab, ref: wantRef || undefined });
    const t0 = performance.now();
    try {
      const { doc } = await api("api/render", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!doc.superseded) {
        show(doc, performance.now() - t0, key, body);
        $("error").textContent = "";
      }
    } catch (e) {
      $("error").textContent = e.message === "Failed to fetch" ? "the explorer does not answer (is it still running?)" : e.message;
    } finally {
      inflight = false;
      $("status").textContent = dirty ? "rendering..." : "";
      document.body.dataset.busy = dirty ? "1" : "0";
      pump();
    }
  }

  function show(doc, roundTrip, key, body) {
    const img = $("image");
    img.src = "data:image/png;base64," + doc.image;
    img.dataset.rid = String(doc.rid);
    if (doc.scores) {
      if (Object.keys(body.attrs).length === 0 && !body.mix && body.channels.length === 0) {
        reference = doc.scores; referenceKey = key;
      } else if (doc.reference) {
        reference = doc.reference; referenceKey = key;
      } else if (referenceKey !== key) {
        reference = null;
      }
      drawScores(doc.scores);
    }
    lastCommand = doc.command;
    $("command").value = doc.command;
    $("output-name").textContent = "it writes explore-export/" + doc.output + (doc.start_file ? ", reading start.npz from the zip" : "");
    const ms = doc.ms;
    $("timing").textContent = "server " + ms.total.toFixed(0) + " ms (render " + ms.render.toFixed(0) + ", scores " +
      ms.scores.toFixed(0) + "), round trip " + roundTrip.toFixed(0) + " ms";
  }

  // ------------------------------------------------------------------------------------------ scores
  function scoreScale(name) {
    const kinds = (info.classifier && info.classifier.kinds) || {};
    return kinds[name] === "logit" ? 8 : kinds[name] ? 1.5 : 4;
  }

  function buildScores() {
    const box = $("scores");
    box.textContent = "";
    if (!info.classifier) {
      $("score-note").textContent = "(no classifier: start with --classifier SPEC)";
      return;
    }
    $("score-note").textContent = "(" + info.classifier.spec + "; tick: the unedited image)";
    for (const name of info.classifier.names) {
      const row = el("div", { class: "bar-row", "data-attr": name }, [
        el("span", { class: "bar-name", text: name }),
        el("span", { class: "bar-track" }, [el("span", { class: "bar" }), el("span", { class: "bar-ref" }), el("span", { class: "bar-zero" })]),
        el("span", { class: "bar-value" }),
      ]);
      box.appendChild(row);
    }
  }

  function drawScores(scores) {
    for (const row of $("scores").children) {
      const name = row.dataset.attr;
      const v = scores[name];
      if (v === undefined) continue;
      const scale = scoreScale(name);
      const x = 50 * Math.tanh(v / scale);
      const bar = row.querySelector(".bar");
      bar.style.left = (x < 0 ? 50 + x : 50) + "%";
      bar.style.width = Math.abs(x) + "%";
      bar.className = "bar " + (v >= 0 ? "pos" : "neg");
      row.dataset.value = String(v);
      const ref = row.querySelector(".bar-ref");
      let text = v.toFixed(2);
      if (reference && reference[name] !== undefined) {
        ref.hidden = false;
        ref.style.left = (50 + 50 * Math.tanh(reference[name] / scale)) + "%";
        const d = v - reference[name];
        if (Math.abs(d) >= 0.005) text += " (" + (d > 0 ? "+" : "") + d.toFixed(2) + ")";
      } else {
        ref.hidden = true;
      }
      row.querySelector(".bar-value").textContent = text;
    }
  }

  // ------------------------------------------------------------------------------------------ controls
  function setSeed(seed) {
    seed = Math.max(0, Math.min(MAX_SEED, Math.floor(Number(seed) || 0)));
    if (photo) leavePhoto(false);
    state.seed = seed;
    $("seed").value = seed;
    changed();
  }

  function buildSliders() {
    const body = $("sliders").querySelector("tbody");
    body.textContent = "";
    $("no-sliders").hidden = info.attributes.length > 0;
    for (const a of info.attributes) {
      const range = el("input", { type: "range", min: -SLIDER, max: SLIDER, step: 0.05, value: 0, "data-attr": a.name, class: "attr-slider" });
      const num = el("input", { type: "number", min: -info.limits.alpha, max: info.limits.alpha, step: 0.05, value: 0, class: "attr-value" });
      const zero = el("button", { type: "button", text: "0", title: "back to 0", class: "small" });
      const hold = el("input", { type: "checkbox", class: "attr-hold", title: "keep " + a.name + " fixed while moving the others" });
      range.setAttribute("aria-label", a.name);
      const set = (v) => {
        v = round(Math.max(-info.limits.alpha, Math.min(info.limits.alpha, Number(v) || 0)), 3);
        state.attrs[a.name] = v;
        range.value = v;
        num.value = v;
        changed();
      };
      range.addEventListener("input", () => set(range.value));
      num.addEventListener("change", () => set(num.value));
      zero.addEventListener("click", () => set(0));
      hold.addEventListener("change", () => {
        state.conditions = state.conditions.filter((c) => c !== a.name);
        if (hold.checked) state.conditions.push(a.name);
        changed();
      });
      const row = el("tr", { "data-attr": a.name }, [
        el("td", { text: a.name }), el("td", {}, [range]), el("td", {}, [num, zero]), el("td", {}, [hold]),
      ]);
      body.appendChild(row);
    }
  }

  function syncSliders() {
    for (const row of $("sliders").querySelectorAll("tbody tr")) {
      const name = row.dataset.attr;
      const a = info.attributes.find((x) => x.name === name);
      const v = state.attrs[name] || 0;
      row.querySelector(".attr-slider").value = v;
      row.querySelector(".attr-value").value = v;
      row.querySelector(".attr-hold").checked = state.conditions.includes(name);
      const space = photo && photo.space === "s" ? "w" : state.space;
      const usable = a.spaces.includes(space);
      row.classList.toggle("disabled", !usable);
      for (const input of row.querySelectorAll("input, button")) input.disabled = !usable;
      row.title = usable ? "" : "no " + space.toUpperCase() + " direction for " + name;
    }
  }

  function channelRow(c) {
    const layer = el("select", { class: "ch-layer" });
    for (const l of info.style_layers) layer.appendChild(el("option", { value: l.name, text: l.name + " (" + l.channels + ")" }));
    layer.value = c.layer;
    const channel = el("input", { type: "number", min: 0, step: 1, value: c.channel, class: "ch-channel" });
    const range = el("input", { type: "range", min: -CHANNEL, max: CHANNEL, step: 0.1, value: c.value, class: "ch-slider" });
    const num = el("input", { type: "number", step: 0.1, value: c.value, class: "ch-value" });
    const remove = el("button", { type: "button", text: "\u2715", title: "remove", class: "small" });
    const row = el("div", { class: "row channel" }, [layer, el("span", { text: ":" }), channel, range, num, remove]);
    const limit = () => info.style_layers.find((l) => l.name === layer.value).channels - 1;
    channel.max = limit();
    const update = (v) => {
      c.layer = layer.value;
      channel.max = limit();
      c.channel = Math.max(0, Math.min(limit(), Math.floor(Number(channel.value) || 0)));
      channel.value = c.channel;
      if (v !== undefined) c.value = round(Math.max(-info.limits.channel_value, Math.min(info.limits.channel_value, Number(v) || 0)), 3);
      range.value = c.value;
      num.value = c.value;
      changed();
    };
    layer.addEventListener("change", () => update());
    channel.addEventListener("change", () => update());
    range.addEventListener("input", () => update(range.value));
    num.addEventListener("change", () => update(num.value));
    remove.addEventListener("click", () => {
      state.channels = state.channels.filter((x) => x !== c);
      row.remove();
      changed();
    });
    return row;
  }

  function buildChannels() {
    const box = $("channels");
    box.textContent = "";
    for (const c of state.channels) box.appendChild(channelRow(c));
  }

  function layersText() {
    const v = $("layers").value;
    return v === "custom" ? ($("layers-custom").value.trim() || "all") : v;
  }

  function showLayers() {
    const spec = state.space === "w+" ? state.layers : "all";
    const parts = spec.split(",").map((p) => p.trim());
    const shown = [];
    for (const p of parts) if (info.levels[p]) shown.push(...info.levels[p]);
    $("layers-shown").textContent = spec === "all" ? "ws 0-" + (info.num_ws - 1) : shown.length ? "ws " + shown.join(",") : "";
  }

  function mixFromControls() {
    const levels = Array.from(document.querySelectorAll(".mix-level")).filter((x) => x.checked).map((x) => x.value);
    if (!$("mix-on").checked || levels.length === 0) return null;
    const seed = Math.max(0, Math.min(MAX_SEED, Math.floor(Number($("mix-seed").value) || 0)));
    return { seed: seed, layers: levels.join(",") };
  }

  function syncControls() {
    $("seed").value = state.seed;
    $("space").value = state.space;
    $("noise").value = state.noise;
    $("psi").value = state.psi;
    $("psi-value").value = state.psi;
    $("cutoff").value = state.cutoff === null ? "" : String(state.cutoff);
    const presets = Array.from($("layers").options).map((o) => o.value);
    if (presets.includes(state.layers)) { $("layers").value = state.layers; $("layers-custom").hidden = true; }
    else { $("layers").value = "custom"; $("layers-custom").hidden = false; $("layers-custom").value = state.layers; }
    $("mix-on").checked = !!state.mix;
    if (state.mix) {
      $("mix-seed").value = state.mix.seed;
      const levels = state.mix.layers.split(",");
      for (const x of document.querySelectorAll(".mix-level")) x.checked = levels.includes(x.value);
    }
    const isPhoto = !!photo;
    const sPhoto = isPhoto && photo.space === "s";
    $("psi").disabled = $("psi-value").disabled = $("cutoff").disabled = isPhoto;
    $("space").disabled = sPhoto;
    for (const o of $("space").options) {
      o.disabled = isPhoto && (o.value === "z" || (photo.space === "w+" && o.value === "w"));
    }
    $("layers").disabled = $("layers-custom").disabled = state.space !== "w+";
    $("mix-on").disabled = sPhoto;
    $("photo-active").hidden = !isPhoto;
    if (isPhoto) $("photo-name").textContent = photo.name + " (" + photo.space.toUpperCase() + " codes)";
    syncSliders();
    showLayers();
  }

  function wireControls() {
    $("seed").addEventListener("change", () => setSeed($("seed").value));
    $("seed-prev").addEventListener("click", () => setSeed(Math.max(0, state.seed - 1)));
    $("seed-next").addEventListener("click", () => setSeed(Math.min(MAX_SEED, state.seed + 1)));
    $("seed-random").addEventListener("click", () => setSeed(Math.floor(Math.random() * 100000)));
    $("space").addEventListener("change", () => {
      state.space = $("space").value;
      if (state.space !== "w+" && state.mix) { state.mix = null; $("mix-on").checked = false; }
      if (state.space === "w" && state.cutoff !== null && state.psi !== 1) { state.space = "w+"; }
      syncControls();
      changed();
    });
    $("noise").addEventListener("change", () => { state.noise = $("noise").value; changed(); });
    const setPsi = (v) => {
      state.psi = round(Math.max(info.limits.psi[0], Math.min(info.limits.psi[1], Number(v))), 3);
      if (Number.isNaN(state.psi)) state.psi = 1;
      $("psi").value = state.psi;
      $("psi-value").value = state.psi;
      changed();
    };
    $("psi").addEventListener("input", () => setPsi($("psi").value));
    $("psi-value").addEventListener("change", () => setPsi($("psi-value").value));
    $("cutoff").addEventListener("change", () => {
      state.cutoff = $("cutoff").value === "" ? null : Number($("cutoff").value);
      if (state.cutoff !== null && state.space === "w") { state.space = "w+"; syncControls(); }
      changed();
    });
    $("layers").addEventListener("change", () => {
      $("layers-custom").hidden = $("layers").value !== "custom";
      state.layers = layersText();
      showLayers();
      changed();
    });
    $("layers-custom").addEventListener("change", () => { state.layers = layersText(); showLayers(); changed(); });
    $("reset-attrs").addEventListener("click", () => {
      state.attrs = {};
      state.conditions = [];
      syncSliders();
      changed();
    });
    $("add-channel").addEventListener("click", () => {
      const used = new Set(state.channels.map((c) => c.layer + ":" + c.channel));
      const layer = info.style_layers[info.style_layers.length - 3] || info.style_layers[0];
      let ch = 0;
      while (used.has(layer.name + ":" + ch) && ch < layer.channels - 1) ch++;
      const c = { layer: layer.name, channel: ch, value: 0 };
      state.channels.push(c);
      $("channels").appendChild(channelRow(c));
      changed();
    });
    const mixChanged = () => {
      state.mix = mixFromControls();
      if (state.mix && state.space !== "w+") { state.space = "w+"; }
      syncControls();
      changed();
    };
    $("mix-on").addEventListener("change", mixChanged);
    $("mix-seed").addEventListener("change", mixChanged);
    $("mix-random").addEventListener("click", () => {
      $("mix-seed").value = Math.floor(Math.random() * 100000);
      $("mix-on").checked = true;
      mixChanged();
    });
    for (const x of document.querySelectorAll(".mix-level")) x.addEventListener("change", mixChanged);
    $("reset").addEventListener("click", () => {
      leavePhoto(false);
      state = clone(DEFAULTS);
      buildChannels();
      syncControls();
      changed();
    });
    $("copy-command").addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(lastCommand); $("status").textContent = "copied"; }
      catch (e) { $("command").select(); document.execCommand("copy"); }
    });
    $("export-png").addEventListener("click", () => download("png"));
    $("export-latents").addEventListener("click", () => download("latents"));
    $("export-zip").addEventListener("click", () => download("zip"));
  }

  async function download(item) {
    try {
      const r = await fetch("api/export?item=" + item, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload()),
      });
      if (!r.ok) throw new Error((await r.json()).error);
      const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
      const url = URL.createObjectURL(await r.blob());
      const a = el("a", { href: url, download: name ? name[1] : "explore-" + item });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      $("error").textContent = "export: " + e.message;
    }
  }

  // ------------------------------------------------------------------------------------------ photos
  let photoBlob = null;
  let photoName = "photo";
  let job = null;

  async function cropToModel(file) {
    // centre square, resized to the model's resolution: what the server takes (no upload of a large original)
    const bitmap = await createImageBitmap(file);
    const side = Math.min(bitmap.width, bitmap.height);
    const canvas = el("canvas", { width: info.resolution, height: info.resolution });
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, info.resolution, info.resolution);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  function method() {
    return document.querySelector("input[name=photo-method]:checked").value;
  }

  function wirePhotos() {
    const inv = info.inversion;
    $("photo-steps").value = inv.project_steps;
    $("photo-steps").max = inv.max_project_steps;
    const encode = document.querySelector("input[name=photo-method][value=encode]");
    encode.disabled = !inv.encode;
    $("encode-label").classList.toggle("disabled", !inv.encode);
    if (inv.encode) $("encode-label").title = "One pass of the encoder " + inv.encoder;
    const methodChanged = () => {
      const p = method() === "project";
      $("photo-steps").disabled = $("photo-space").disabled = !p;
    };
    for (const r of document.querySelectorAll("input[name=photo-method]")) r.addEventListener("change", methodChanged);
    $("photo-file").addEventListener("change", async () => {
      const file = $("photo-file").files[0];
      if (!file) return;
      try {
        photoBlob = await cropToModel(file);
        photoName = file.name.replace(/\.[^.]*$/, "") || "photo";
        $("photo-target").src = URL.createObjectURL(photoBlob);
        $("photo-target").hidden = false;
        $("photo-go").disabled = false;
        $("photo-status").textContent = "cropped to " + info.resolution + " px";
      } catch (e) {
        $("photo-status").textContent = "cannot read this image: " + e.message;
      }
    });
    $("photo-go").addEventListener("click", invert);
    $("photo-cancel").addEventListener("click", async () => {
      if (job) await fetch("api/cancel?id=" + job, { method: "POST" });
    });
    $("photo-leave").addEventListener("click", () => leavePhoto(true));
  }

  async function invert() {
    if (!photoBlob) return;
    $("photo-go").disabled = true;
    const name = encodeURIComponent(photoName);
    try {
      if (method() === "encode") {
        $("photo-status").textContent = "encoding...";
        const { doc } = await api("api/encode?name=" + name, { method: "POST", headers: { "Content-Type": "image/png" }, body: photoBlob });
        usePhoto({ id: doc.photo, name: doc.name, space: doc.space });
        $("photo-status").textContent = "encoded (PSNR " + doc.metrics.psnr.toFixed(1) + " dB)";
        return;
      }
      const steps = Math.max(1, Math.floor(Number($("photo-steps").value) || 1));
      const space = $("photo-space").value;
      const { doc } = await api("api/project?name=" + name + "&steps=" + steps + "&space=" + encodeURIComponent(space), {
        method: "POST", headers: { "Content-Type": "image/png" }, body: photoBlob,
      });
      job = doc.job;
      $("photo-progress").hidden = false;
      $("photo-progress").value = 0;
      $("photo-cancel").hidden = false;
      await poll(space);
    } catch (e) {
      $("photo-status").textContent = e.message;
    } finally {
      $("photo-go").disabled = false;
    }
  }

  async function poll(space) {
    for (;;) {
      const { doc } = await api("api/job?id=" + job);
      $("photo-progress").value = doc.step / doc.total;
      $("photo-status").textContent = "projecting: step " + doc.step + " of " + doc.total + " (" + doc.seconds.toFixed(0) + " s)";
      if (doc.preview) { $("photo-preview").src = "data:image/png;base64," + doc.preview; $("photo-preview").hidden = false; }
      if (doc.done) {
        $("photo-cancel").hidden = true;
        $("photo-progress").hidden = true;
        job = null;
        if (doc.error) { $("photo-status").textContent = doc.error; return; }
        $("photo-status").textContent = "projected in " + doc.seconds.toFixed(0) + " s";
        usePhoto({ id: doc.photo, name: doc.name, space: space });
        return;
      }
      await new Promise((r) => setTimeout(r, 400));
    }
  }

  function usePhoto(p) {
    photo = p;
    state.photo = p.id;
    state.psi = 1;
    state.cutoff = null;
    state.space = p.space === "s" ? "w" : p.space;
    if (p.space === "s") state.mix = null;
    syncControls();
    changed();
  }

  function leavePhoto(render) {
    if (!photo) return;
    photo = null;
    state.photo = null;
    syncControls();
    if (render) changed();
  }

  // ------------------------------------------------------------------------------------------ URL (reload, share)
  function saveHash() {
    // only what differs from the defaults, so that a shared URL stays short
    const now = payload({ photo: null });
    const plain = payload({ photo: null }, DEFAULTS);
    const diff = {};
    for (const k of Object.keys(now)) if (JSON.stringify(now[k]) !== JSON.stringify(plain[k])) diff[k] = now[k];
    const text = JSON.stringify(diff);
    history.replaceState(null, "", text === "{}" ? location.pathname : "#" + encodeURIComponent(text));
  }

  function loadHash() {
    if (location.hash.length < 2) return;
    try {
      const s = JSON.parse(decodeURIComponent(location.hash.slice(1)));
      for (const k of Object.keys(DEFAULTS)) if (k in s && k !== "photo") state[k] = s[k];
      if (!Array.isArray(state.channels)) state.channels = [];
      if (!Array.isArray(state.conditions)) state.conditions = [];
      if (typeof state.attrs !== "object" || state.attrs === null) state.attrs = {};
    } catch (e) {
      state = clone(DEFAULTS);
    }
  }

  // ------------------------------------------------------------------------------------------ start
  async function start() {
    try {
      info = (await api("api/info")).doc;
    } catch (e) {
      $("error").textContent = "cannot reach the explorer: " + e.message;
      return;
    }
    $("model").textContent = info.model + " \u00b7 " + info.resolution + " px \u00b7 " + info.num_ws + " ws layers";
    const frame = document.querySelector(".frame");
    const shown = info.resolution <= 128 ? Math.min(448, info.resolution * 6) : Math.min(512, info.resolution);
    frame.style.width = frame.style.height = shown + "px";
    $("image").classList.toggle("pixelated", info.resolution <= 128);
    for (let k = 0; k <= info.num_ws; k++) $("cutoff").appendChild(el("option", { value: String(k), text: "first " + k }));
    $("psi-value").min = info.limits.psi[0];
    $("psi-value").max = info.limits.psi[1];
    loadHash();
    buildSliders();
    buildScores();
    buildChannels();
    wireControls();
    wirePhotos();
    syncControls();
    window.addEventListener("hashchange", () => { // a pasted or edited URL: its state
      leavePhoto(false);
      state = clone(DEFAULTS);
      loadHash();
      buildChannels();
      syncControls();
      changed();
    });
    document.body.dataset.ready = "1";
    changed();
  }

  start();
})();
