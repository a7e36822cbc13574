// The digit pad: pointer strokes on a canvas, the model's answer, and a photo button.
// Two ways to run: under `tinygrad-mnist serve` each drawing is POSTed to /predict; in the
// web app that `tinygrad-mnist export --web` writes, model.json lies beside the page and
// the model runs here (infer.js, preprocess.js), offline once the service worker is in.
"use strict";
(() => {
  const SEND_SIZE = 112;      // the drawing is sent as SEND_SIZE x SEND_SIZE greys
  const LINE_WIDTH = 22;      // in canvas pixels (the canvas is 280 x 280)
  const LIVE_DELAY_MS = 300;  // live prediction waits for this much quiet while drawing

  const $ = (id) => document.getElementById(id);
  const pad = $("pad"), predictButton = $("predict"), clearButton = $("clear"), live = $("live");
  const message = $("message"), digit = $("digit"), confidence = $("confidence");
  const preview = $("preview"), bars = $("bars"), photo = $("photo");
  const ctx = pad.getContext("2d");
  const previewCtx = preview.getContext("2d");
  const small = document.createElement("canvas");
  small.width = small.height = SEND_SIZE;
  const smallCtx = small.getContext("2d", { willReadFrequently: true });

  let inked = false;           // anything drawn since the last clear
  let stroke = null;           // { id, last: [x, y] } while a pointer is down
  let timer = 0;               // pending live prediction
  let controller = null;       // the request in flight, to abort when a newer one starts
  let seq = 0;                 // only the newest request may update the page

  const setState = (state) => { document.body.dataset.state = state; };

  // ---------------------------------------------------------------- where the model runs
  const loadScript = (src) => new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(script);
  });

  // The model here when the page comes with one (model.json beside it), else null; a
  // rejected promise (the reason shown) if it comes with one that cannot be loaded.
  async function startHere() {
    let response;
    try {
      response = await fetch("model.json");
    } catch (err) {
      return null;
    }
    if (!response.ok) return null;
    let model;
    try {
      const description = await response.json();
      await Promise.all(["infer.js", "preprocess.js"].map(loadScript));
      model = await Infer.load("model.json", description);
    } catch (err) {
      showError(`The model cannot be loaded (${err.message}); reload the page.`);
      throw err;
    }
    for (const [rel, href] of [["manifest", "manifest.webmanifest"], ["apple-touch-icon", "icon-192.png"]]) {
      const link = document.createElement("link");
      link.rel = rel;
      link.href = href;
      document.head.appendChild(link);
    }
    if ("serviceWorker" in navigator) {  // only over https or on localhost
      navigator.serviceWorker.register("sw.js").catch(() => {});
    }
    photo.parentElement.hidden = false;
    document.body.dataset.mode = "here";
    return model;
  }
  const here = startHere();
  here.catch(() => {});  // said on the page; predictions say it again

  // ---------------------------------------------------------------- drawing
  function resetPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = ctx.fillStyle = "#000";
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = ctx.lineJoin = "round";
    inked = false;
  }

  function toCanvas(event) {
    const r = pad.getBoundingClientRect();
    return [(event.clientX - r.left) * (pad.width / r.width),
            (event.clientY - r.top) * (pad.height / r.height)];
  }

  function dot([x, y]) {
    ctx.beginPath();
    ctx.arc(x, y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function segment([x0, y0], [x1, y1]) {
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }

  pad.addEventListener("pointerdown", (event) => {
    if (stroke || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    stroke = { id: event.pointerId, last: toCanvas(event) };
    dot(stroke.last);
    inked = true;
    scheduleLive();
  });

  pad.addEventListener("pointermove", (event) => {
    if (!stroke || event.pointerId !== stroke.id) return;
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of coalesced.length ? coalesced : [event]) {
      const point = toCanvas(e);
      segment(stroke.last, point);
      stroke.last = point;
    }
    scheduleLive();
  });

  const endStroke = (event) => {
    if (!stroke || event.pointerId !== stroke.id) return;
    stroke = null;
    scheduleLive(LIVE_DELAY_MS / 2);
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  // ---------------------------------------------------------------- predicting
  function scheduleLive(delay = LIVE_DELAY_MS) {
    if (!live.checked || !inked) return;
    clearTimeout(timer);
    timer = setTimeout(predict, delay);
    setState("pending");
  }

  function snapshot() {
    smallCtx.imageSmoothingEnabled = true;
    smallCtx.imageSmoothingQuality = "high";
    smallCtx.drawImage(pad, 0, 0, SEND_SIZE, SEND_SIZE);
    const rgba = smallCtx.getImageData(0, 0, SEND_SIZE, SEND_SIZE).data;
    const pixels = new Array(SEND_SIZE * SEND_SIZE);
    for (let i = 0; i < pixels.length; i++) pixels[i] = rgba[4 * i];  // grey: R = G = B
    return { width: SEND_SIZE, height: SEND_SIZE, pixels };
  }

  async function predict() {
    clearTimeout(timer);
    timer = 0;
    if (controller) controller.abort();
    const mine = ++seq;
    controller = new AbortController();
    setState("busy");
    let model;
    try {
      model = await here;
    } catch (err) {
      showError(`The model cannot be loaded (${err.message}); reload the page.`);
      return;
    }
    if (mine !== seq) return;
    if (model) {
      controller = null;
      const { width, height, pixels } = snapshot();   // the steps of serve's prepare_drawing
      answerHere(model, () => Preprocess.mnistStyle({ width, height, grey: pixels }),
                 EMPTY_DRAWING);
      return;
    }
    let response, data;
    try {
      response = await fetch("predict", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(snapshot()),
        signal: controller.signal,
      });
      data = await response.json().catch(() => ({}));
    } catch (err) {
      if (err.name !== "AbortError" && mine === seq) {
        showError("Cannot reach the server. Is it still running?");
      }
      return;
    }
    if (mine !== seq) return;
    controller = null;
    if (response.ok && Array.isArray(data.probabilities) && data.probabilities.length === 10) {
      showResult(data);
    } else {
      showError(data.error || `The server answered ${response.status}.`);
    }
  }

  const EMPTY_DRAWING = "Draw a digit first.";

  // Preprocess (`toImage`: the 28x28 image, or Preprocess.NoInk) and predict here.
  function answerHere(model, toImage, noInk) {
    let image;
    try {
      image = toImage();
    } catch (err) {
      showError(err instanceof Preprocess.NoInk ? noInk : `Cannot read this: ${err.message}`);
      return;
    }
    const probabilities = Infer.predict(model, image);
    showResult({ digit: probabilities.indexOf(Math.max(...probabilities)), probabilities,
                 preview: Array.from(image, (v) => Math.round(255 * v)) });
  }

  photo.addEventListener("change", async () => {
    const file = photo.files[0];
    photo.value = "";
    const model = await here.catch(() => null);
    if (!file || !model) return;
    clearTimeout(timer);
    timer = 0;
    const mine = ++seq;
    resetPad();
    setState("busy");
    let picture;
    try {
      picture = await Preprocess.readPicture(file);
    } catch (err) {
      if (mine === seq) showError("Cannot read this picture; take a photo or choose a JPEG or PNG.");
      return;
    }
    if (mine !== seq) return;  // cleared, or another photo, meanwhile
    answerHere(model, () => Preprocess.mnistStyle(picture),
               "No digit found in the photo: one dark digit on light paper, filling most of it.");
  });

  // ---------------------------------------------------------------- showing
  const barItems = [];
  for (let k = 0; k < 10; k++) {
    const li = document.createElement("li");
    li.innerHTML = '<span class="bar"><span class="fill"></span></span>' +
                   '<span class="k"></span><span class="p">–</span>';
    li.querySelector(".k").textContent = String(k);
    bars.appendChild(li);
    barItems.push(li);
  }

  function showBars(probabilities) {
    const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    barItems.forEach((li, k) => {
      const p = probabilities ? probabilities[k] : 0;
      li.querySelector(".fill").style.height = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".p").textContent = probabilities ? `${Math.round(100 * p)}%` : "–";
      li.classList.toggle("top", k === best);
      li.title = probabilities ? `${k}: ${(100 * p).toFixed(2)}%` : "";
    });
  }

  function showPreview(greys) {
    const image = previewCtx.createImageData(28, 28);
    for (let i = 0; i < 28 * 28; i++) {
      const g = greys ? greys[i] : 0;
      image.data.set([g, g, g, 255], 4 * i);
    }
    previewCtx.putImageData(image, 0, 0);
  }

  function showResult(data) {
    digit.textContent = String(data.digit);
    const p = data.probabilities[data.digit];
    confidence.textContent = p > 0.999 ? "over 99.9% sure" : `${(100 * p).toFixed(1)}% sure`;
    showBars(data.probabilities);
    showPreview(Array.isArray(data.preview) && data.preview.length === 784 ? data.preview : null);
    message.textContent = "";
    setState(timer ? "pending" : "done");
  }

  function showError(text) {
    showEmpty();
    message.textContent = text;
    setState(timer ? "pending" : "error");
  }

  function showEmpty() {
    digit.textContent = "–";
    confidence.innerHTML = "&nbsp;";
    showBars(null);
    showPreview(null);
    message.textContent = "";
  }

  predictButton.addEventListener("click", predict);
  clearButton.addEventListener("click", () => {
    clearTimeout(timer);
    timer = 0;
    seq++;                       // an answer still on its way is for the old drawing
    if (controller) controller.abort();
    controller = null;
    resetPad();
    showEmpty();
    setState("idle");
  });

  resetPad();
  showEmpty();
})();
