// A drawing or a photo of one digit -> the 28x28 image the model sees, in the browser.
//
// The same steps, function for function, as tinygrad_mnist/data/photos.py, which `serve`
// (prepare_drawing) and `predict` (mnist_style) run: isPhoto tells a clean scan or drawing
// (cleanInk: grey levels kept) from a photo (photoInk: grey or colour channel, background
// flattening, threshold, the digit's pieces), then thickening and fit and centre, with
// Pillow's resampling and NumPy's medians and percentiles written out so that the results
// agree to float rounding. tests/test_web.py checks them against the Python functions.
//
// A plane is { h, w, a } with `a` a Float64Array of h * w values in row-major order.
"use strict";
const Preprocess = (() => {
  const IMAGE_SIZE = 28;
  const BOX = 20;              // MNIST fits each digit into 20x20, then centres it in 28x28
  const INK_THRESHOLD = 0.2;   // fraction of full ink that counts for the bounding box
  const MIN_CONTRAST = 0.1;    // ink must be this much darker/brighter than the paper
  const WORK_SIDE = 256;       // longer side of the working copy of a photo, in pixels
  const KEEP_FRACTION = 0.1;   // pieces smaller than this fraction of the largest are specks
  const STROKE = 2.0;          // thinnest stroke (pixels, in the 20x20 box) left as it is
  const POLARITY_SIDE = 64;    // longer side of the copy on which the ink's channel is chosen
  const TIGHT_CROP = 64;       // pictures with a shorter side below this are cropped to the digit
  const CLEAN_SPREAD = 0.01;   // a clean page's border: median deviation from its median
  const CLEAN_CORNERS = 0.03;  // a clean page's three most paper-like corners: their range
  const CLEAN_NOISE = 0.01;    // a clean page's border: median |difference of neighbours|
  const CLEAN_CONTRAST = 0.25; // a clean page's ink differs at least this much from the paper
  const HALO = 0.2;            // on a clean page, ink fainter than this (of the strongest) is paper

  class NoInk extends Error {}
  const noInk = () => new NoInk("no ink found: the image is empty (uniform background)");

  const plane = (h, w, a = new Float64Array(h * w)) => ({ h, w, a });
  const max = (a) => {
    let m = -Infinity;
    for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
    return m;
  };
  const min = (a) => {
    let m = Infinity;
    for (let i = 0; i < a.length; i++) if (a[i] < m) m = a[i];
    return m;
  };
  const clampIndex = (i, n) => (i < 0 ? 0 : i >= n ? n - 1 : i);
  // f(value, index) of each value of `a`, as a new Float64Array (a plain loop: a typed
  // array's own map is many times slower).
  const mapped = (a, f) => {
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = f(a[i], i);
    return out;
  };
  // 1 where test(value, index) holds, else 0: a mask, as a Uint8Array.
  const where = (a, test) => {
    const out = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = test(a[i], i) ? 1 : 0;
    return out;
  };

  // Python's round(): halves go to the even neighbour.
  function pyRound(x) {
    const f = Math.floor(x), d = x - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  }

  // NumPy's float32 sum (pairwise: eight running sums per block of up to 128 values).
  function sumFloat32(a, start = 0, n = a.length - start) {
    const f = Math.fround;
    if (n < 8) {
      let s = 0;
      for (let i = 0; i < n; i++) s = f(s + a[start + i]);
      return s;
    }
    if (n <= 128) {
      const r = [];
      for (let j = 0; j < 8; j++) r.push(a[start + j]);
      let i = 8;
      for (; i < n - (n % 8); i += 8) {
        for (let j = 0; j < 8; j++) r[j] = f(r[j] + a[start + i + j]);
      }
      let s = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
      for (; i < n; i++) s = f(s + a[start + i]);
      return s;
    }
    let half = Math.floor(n / 2);
    half -= half % 8;
    return f(sumFloat32(a, start, half) + sumFloat32(a, start + half, n - half));
  }

  // np.percentile(values, q) ("linear"); `sorted` ascending.
  function percentile(sorted, q) {
    const n = sorted.length, index = (n - 1) * (q / 100);
    if (index >= n - 1) return sorted[n - 1];
    const below = Math.floor(index), t = index - below;
    const a = sorted[below], b = sorted[below + 1], diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  }
  const ascending = (a) => Float64Array.from(a).sort();

  // np.median(values): the middle value, or the mean of the two middle ones.
  function median(values) {
    const sorted = ascending(values), n = sorted.length, half = Math.floor(n / 2);
    return n % 2 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2;
  }

  // ---------------------------------------------------------------- Pillow's resampling
  const sinc = (x) => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));
  const FILTERS = {
    box: { support: 0.5, at: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
    lanczos: { support: 3, at: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  };

  // For each output pixel, its first input pixel and normalised weights.
  function coefficients(inSize, outSize, filter) {
    const scale = inSize / outSize, filterScale = Math.max(scale, 1);
    const support = filter.support * filterScale, inverse = 1 / filterScale;
    const out = [];
    for (let i = 0; i < outSize; i++) {
      const centre = (i + 0.5) * scale;
      const first = Math.max(0, Math.trunc(centre - support + 0.5));
      const end = Math.min(inSize, Math.trunc(centre + support + 0.5));
      const weights = [];
      let total = 0;
      for (let x = first; x < end; x++) {
        const w = filter.at((x - centre + 0.5) * inverse);
        weights.push(w);
        total += w;
      }
      out.push({ first, weights: total !== 0 ? weights.map((w) => w / total) : weights });
    }
    return out;
  }

  // Image.fromarray(p.astype(float32)).resize((w, h), filter), as float64 again.
  function resize(p, w, h, filter) {
    let cur = { h: p.h, w: p.w, a: Float32Array.from(p.a) };
    if (w !== p.w) {                       // horizontal pass first, into float32
      const cs = coefficients(p.w, w, FILTERS[filter]);
      const next = new Float32Array(cur.h * w);
      for (let y = 0; y < cur.h; y++) {
        for (let x = 0; x < w; x++) {
          const { first, weights } = cs[x];
          let s = 0;
          for (let k = 0; k < weights.length; k++) s += cur.a[y * cur.w + first + k] * weights[k];
          next[y * w + x] = s;
        }
      }
      cur = { h: cur.h, w, a: next };
    }
    if (h !== p.h) {
      const cs = coefficients(p.h, h, FILTERS[filter]);
      const next = new Float32Array(h * cur.w);
      for (let y = 0; y < h; y++) {
        const { first, weights } = cs[y];
        for (let x = 0; x < cur.w; x++) {
          let s = 0;
          for (let k = 0; k < weights.length; k++) s += cur.a[(first + k) * cur.w + x] * weights[k];
          next[y * cur.w + x] = s;
        }
      }
      cur = { h, w: cur.w, a: next };
    }
    return plane(cur.h, cur.w, Float64Array.from(cur.a));
  }

  // Image.fromarray(bytes).reduce(factor): the rounded mean of each factor x factor block
  // (partial blocks at the right and bottom edges too), in Pillow's fixed-point arithmetic.
  function reduceBytes(bytes, h, w, factor) {
    const oh = Math.ceil(h / factor), ow = Math.ceil(w / factor);
    const out = new Uint8Array(oh * ow);
    for (let y = 0; y < oh; y++) {
      const y1 = Math.min(h, (y + 1) * factor);
      for (let x = 0; x < ow; x++) {
        const x1 = Math.min(w, (x + 1) * factor);
        const n = (y1 - y * factor) * (x1 - x * factor);
        const multiplier = Math.trunc(Math.fround(4294967296 / Math.fround(256 * n)));
        let s = Math.floor(n / 2);
        for (let yy = y * factor; yy < y1; yy++) {
          for (let xx = x * factor; xx < x1; xx++) s += bytes[yy * w + xx];
        }
        out[y * ow + x] = Math.floor((s * multiplier) / 16777216);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- morphology helpers
  // Running min or max (`largest`) over k pixels centred on each pixel along one axis,
  // edges extended: van Herk/Gil-Werman, a forward and a backward pass per block of k.
  function runExtreme(p, k, vertical, largest) {
    if (k <= 1) return p;
    const r = Math.floor(k / 2), out = new Float64Array(p.a.length);
    const n = vertical ? p.h : p.w, lines = vertical ? p.w : p.h;
    const step = vertical ? p.w : 1, lineStep = vertical ? 1 : p.w;
    const length = Math.ceil((n + k - 1) / k) * k;
    const padded = new Float64Array(length), forward = new Float64Array(length);
    const backward = new Float64Array(length);
    const s = largest ? 1 : -1;   // b beats a when s * b > s * a (exact: s is +-1)
    for (let line = 0; line < lines; line++) {
      const base = line * lineStep;
      for (let j = 0; j < length; j++) padded[j] = p.a[base + clampIndex(j - r, n) * step];
      for (let j = 0; j < length; j++) {
        const a = forward[j - 1], b = padded[j];
        forward[j] = j % k === 0 || s * b > s * a ? b : a;
      }
      for (let j = length - 1; j >= 0; j--) {
        const a = backward[j + 1], b = padded[j];
        backward[j] = j % k === k - 1 || s * b > s * a ? b : a;
      }
      for (let i = 0; i < n; i++) {
        const a = backward[i], b = forward[i + k - 1];
        out[base + i * step] = s * b > s * a ? b : a;
      }
    }
    return plane(p.h, p.w, out);
  }
  const filter2d = (p, k, pick) => runExtreme(runExtreme(p, k, true, pick), k, false, pick);
  const erosion = (p, k) => filter2d(p, k, false);
  const dilation = (p, k) => filter2d(p, k, true);
  const opening = (p, k) => dilation(erosion(p, k), k);

  // Mean over 3x3 windows (edges extended), by cumulative sums as photos.box_blur.
  function boxBlur(p) {
    const k = 3, { h, w } = p, W = w + 3, c = new Float64Array((h + 3) * W);
    for (let i = 1; i < h + 3; i++) {        // row i of the sums <- padded row i - 1
      for (let j = 1; j < W; j++) {
        c[i * W + j] = c[(i - 1) * W + j] + p.a[clampIndex(i - 2, h) * w + clampIndex(j - 2, w)];
      }
    }
    for (let i = 1; i < h + 3; i++) {
      for (let j = 1; j < W; j++) c[i * W + j] += c[i * W + j - 1];
    }
    const out = plane(h, w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        out.a[y * w + x] = (c[(y + k) * W + x + k] - c[y * W + x + k] - c[(y + k) * W + x]
                            + c[y * W + x]) / (k * k);
      }
    }
    return out;
  }

  // Otsu's threshold on a 256-bin histogram (np.histogram's bins).
  function otsuThreshold(values, bins = 256) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const step = (hi - lo) / bins, edges = new Float64Array(bins + 1);
    for (let i = 0; i < bins; i++) edges[i] = i * step + lo;
    edges[bins] = hi;
    const hist = new Float64Array(bins);
    for (const v of values) {
      let i = Math.trunc(((v - lo) / (hi - lo)) * bins);
      if (i === bins) i -= 1;
      if (v < edges[i]) i -= 1;
      if (v >= edges[i + 1] && i !== bins - 1) i += 1;
      hist[i] += 1;
    }
    let w0 = 0, s0 = 0, total = 0, totalSum = 0;
    for (let i = 0; i < bins; i++) { total += hist[i]; totalSum += hist[i] * ((edges[i] + edges[i + 1]) / 2); }
    let best = -Infinity, bestIndex = 0;
    for (let i = 0; i < bins; i++) {
      w0 += hist[i];
      s0 += hist[i] * ((edges[i] + edges[i + 1]) / 2);
      const w1 = total - w0, d = s0 / w0 - (totalSum - s0) / w1;
      let between = w0 * w1 * (d * d);
      if (!Number.isFinite(between)) between = -1;
      if (between > best) { best = between; bestIndex = i; }
    }
    return edges[bestIndex + 1];
  }

  // Labels of the 8-connected pieces of `mask` (0 outside): one more than the smallest
  // flat index in each piece, as photos.components.
  function components(mask, h, w) {
    const labels = new Int32Array(h * w), stack = [];
    for (let start = 0; start < h * w; start++) {
      if (!mask[start] || labels[start]) continue;
      labels[start] = start + 1;
      stack.push(start);
      while (stack.length) {
        const i = stack.pop(), y = Math.floor(i / w), x = i % w;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy, xx = x + dx, j = yy * w + xx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w || !mask[j] || labels[j]) continue;
            labels[j] = start + 1;
            stack.push(j);
          }
        }
      }
    }
    return labels;
  }

  // ---------------------------------------------------------------- the pipeline
  // A picture -> float channels in [0, 1], reduced to at most WORK_SIDE on the longer
  // side (photos.float_planes). A picture is { width, height, grey } (grey bytes: the
  // pad's drawing, one plane) or { width, height, rgb } (RGB bytes: a file, three planes).
  function floatPlanes(picture) {
    let { width: w, height: h } = picture;
    let channels = picture.grey ? [picture.grey] : [0, 1, 2].map((c) => {
      const bytes = new Uint8Array(w * h);
      for (let i = 0; i < w * h; i++) bytes[i] = picture.rgb[3 * i + c];
      return bytes;
    });
    if (Math.max(h, w) > 4 * WORK_SIDE) {   // a phone photo: shrink it first
      const factor = Math.ceil(Math.max(h, w) / (4 * WORK_SIDE));
      channels = channels.map((bytes) => reduceBytes(bytes, h, w, factor));
      [h, w] = [Math.ceil(h / factor), Math.ceil(w / factor)];
    }
    let planes = channels.map((bytes) => {
      const a = new Float64Array(w * h);
      for (let i = 0; i < a.length; i++) a[i] = bytes[i] / 255;
      return plane(h, w, a);
    });
    if (Math.max(h, w) > WORK_SIDE) {
      const f = WORK_SIDE / Math.max(h, w);
      const sw = Math.max(1, pyRound(w * f)), sh = Math.max(1, pyRound(h * f));
      planes = planes.map((p) => resize(p, sw, sh, "box"));
    }
    return planes;
  }

  // Median over every other pixel of k x k windows (edges extended): the paper around
  // each pixel (photos._local_median).
  function localMedian(p, k) {
    const r = Math.floor(k / 2), out = plane(p.h, p.w);
    const window = new Float64Array((r + 1) ** 2);
    for (let y = 0; y < p.h; y++) {
      for (let x = 0; x < p.w; x++) {
        let n = 0;
        for (let dy = -r; dy <= r; dy += 2) {
          for (let dx = -r; dx <= r; dx += 2) {
            window[n++] = p.a[clampIndex(y + dy, p.h) * p.w + clampIndex(x + dx, p.w)];
          }
        }
        out.a[y * p.w + x] = median(window.subarray(0, n));
      }
    }
    return out;
  }

  // The plane in which the ink stands out most, as light ink on dark paper, and
  // whether the ink was the darker (photos._ink_channel).
  function inkChannel(planes) {
    const [r, g, b] = planes;
    const isGrey = planes.length === 1 || r.a.every((v, i) => v === g.a[i] && v === b.a[i]);
    const candidates = isGrey ? [r] : [grey(planes), r, g, b];
    const f = Math.min(1, POLARITY_SIDE / Math.max(r.h, r.w));
    const sw = Math.max(1, pyRound(r.w * f)), sh = Math.max(1, pyRound(r.h * f));
    const k = Math.max(3, Math.trunc(0.25 * Math.min(sw, sh)) | 1);
    let best = candidates[0], bestScore = 0, bestContrast = 0;
    for (const p of candidates) {
      const small = resize(p, sw, sh, "box"), sorted = ascending(small.a);
      const [low, mid, high] = [0.5, 50, 99.5].map((q) => percentile(sorted, q));
      const around = localMedian(small, k);
      const diff = ascending(small.a.map((v, i) => v - around.a[i]));
      const dLow = percentile(diff, 0.5), dHigh = percentile(diff, 99.5);
      const score = (mid - low) - (high - mid) - dLow - dHigh;   // > 0: dark tails are longer
      if (Math.abs(score) > Math.abs(bestScore)) {
        best = p;
        bestScore = score;
        bestContrast = Math.max(mid - low, high - mid, -dLow, dHigh);
      }
    }
    if (bestContrast < MIN_CONTRAST / 2 || Math.abs(bestScore) < MIN_CONTRAST / 4) throw noInk();
    const inverted = bestScore > 0;
    return { a: inverted ? plane(best.h, best.w, best.a.map((v) => 1.0 - v)) : best, inverted };
  }

  // The digit's pieces of `mask` (photos._keep_digit).
  function keepDigit(mask, h, w) {
    if (Math.min(h, w) < TIGHT_CROP) return mask;
    const labels = components(mask, h, w);
    const area = new Map(), along = new Map();
    labels.forEach((l) => { if (l) area.set(l, (area.get(l) || 0) + 1); });
    if (!area.size) return mask;
    const edge = [];
    for (let x = 0; x < w; x++) edge.push(labels[x], labels[(h - 1) * w + x]);
    for (let y = 1; y < h - 1; y++) edge.push(labels[y * w], labels[y * w + w - 1]);
    edge.forEach((l) => along.set(l, (along.get(l) || 0) + 1));
    const ids = [...area.keys()].sort((p, q) => p - q);
    const inside = new Map(ids.map((i) => [i, (along.get(i) || 0) < 0.3 * Math.min(h, w)]));
    const largest = (list) => list.reduce((m, i) => (area.get(i) > area.get(m) ? i : m), list[0]);
    let main = largest(ids);
    const within = ids.filter((i) => inside.get(i));
    if (within.length && area.get(largest(within)) >= 0.2 * area.get(main)) main = largest(within);
    const bounds = new Map();                 // id -> [ymin, ymax, xmin, xmax]
    labels.forEach((l, i) => {
      if (!l) return;
      const y = Math.floor(i / w), x = i % w, b = bounds.get(l);
      if (!b) bounds.set(l, [y, y, x, x]);
      else { b[0] = Math.min(b[0], y); b[1] = Math.max(b[1], y); b[2] = Math.min(b[2], x); b[3] = Math.max(b[3], x); }
    });
    const [y0, y1, x0, x1] = bounds.get(main), mainArea = area.get(main);
    const bh = y1 - y0 + 1, bw = x1 - x0 + 1;
    const top = y0 - bh / 4, bottom = y1 + bh / 4, left = x0 - bw / 4, right = x1 + bw / 4;
    const keep = new Set([main]);
    for (const i of ids) {
      if (i === main || area.get(i) < (KEEP_FRACTION / 5) * mainArea
          || (!inside.get(i) && within.length)) continue;
      const [py0, py1, px0, px1] = bounds.get(i);
      const near = py1 >= top && py0 <= bottom && px1 >= left && px0 <= right;
      const enclosed = py0 >= y0 && py1 <= y1 && px0 >= x0 && px1 <= x1;
      if ((near && area.get(i) >= KEEP_FRACTION * mainArea) || enclosed) keep.add(i);
    }
    return labels.map((l) => (keep.has(l) ? 1 : 0));
  }

  // The digit's ink on black at working resolution, by the steps isPhoto chooses
  // (photos.isolate_ink).
  function isolateInk(picture) {
    const planes = floatPlanes(picture);
    return isPhoto(planes) ? photoInk(planes) : cleanInk(planes);
  }

  // Whether `planes` look like a photo rather than a clean scan or drawing: on the grey
  // image, an uneven page (the border's spread, or shadowed corners), a noisy one, or
  // low contrast (photos.is_photo).
  function isPhoto(planes) {
    const g = grey(planes), { h, w } = g, at = (y, x) => g.a[y * w + x];
    const ring = [];                          // the border, clockwise
    if (Math.min(h, w) >= 3) {
      for (let x = 0; x < w - 1; x++) ring.push(at(0, x));
      for (let y = 0; y < h - 1; y++) ring.push(at(y, w - 1));
      for (let x = w - 1; x > 0; x--) ring.push(at(h - 1, x));
      for (let y = h - 1; y > 0; y--) ring.push(at(y, 0));
    } else {
      ring.push(...g.a);
    }
    const paper = median(ring);
    const spread = median(ring.map((v) => Math.abs(v - paper)));
    const noise = ring.length > 1 ? median(ring.slice(1).map((v, i) => Math.abs(v - ring[i]))) : 0;
    const c = Math.max(1, Math.floor(Math.min(h, w) / 8));
    const block = (y0, x0) => {
      const values = [];
      for (let y = y0; y < y0 + c; y++) for (let x = x0; x < x0 + c; x++) values.push(at(y, x));
      return median(values);
    };
    const corners = ascending([block(0, 0), block(0, w - c), block(h - c, 0), block(h - c, w - c)]);
    const shadow = paper > 0.5 ? corners[3] - corners[1] : corners[2] - corners[0];
    const contrast = Math.max(paper - min(g.a), max(g.a) - paper);
    return spread > CLEAN_SPREAD || shadow > CLEAN_CORNERS || noise > CLEAN_NOISE
      || contrast < CLEAN_CONTRAST;
  }

  // A clean scan's or drawing's ink, its grey levels kept: a small blur, the paper is the
  // border's median, the ink what differs from it on its side, scaled to a strongest ink
  // of 1; the faint halo (under HALO of the strongest) is paper; thin strokes thickened
  // (photos.clean_ink).
  function cleanInk(planes) {
    let g = grey(planes);
    const { h, w } = g;
    if (Math.min(h, w) >= 48) g = boxBlur(g);
    const border = [];
    for (let x = 0; x < w; x++) border.push(g.a[x]);
    for (let x = 0; x < w; x++) border.push(g.a[(h - 1) * w + x]);
    for (let y = 0; y < h; y++) border.push(g.a[y * w]);
    for (let y = 0; y < h; y++) border.push(g.a[y * w + w - 1]);
    let paper = median(border);
    const dark = paper - min(g.a) > max(g.a) - paper;   // dark ink on light paper: invert
    if (dark) paper = 1.0 - paper;
    const ink = new Float64Array(h * w);
    for (let i = 0; i < ink.length; i++) {
      ink[i] = Math.max((dark ? 1.0 - g.a[i] : g.a[i]) - paper, 0);
    }
    const strongest = max(ink);
    if (strongest < MIN_CONTRAST) throw noInk();
    const core = new Uint8Array(h * w), soft = new Float64Array(h * w);
    for (let i = 0; i < ink.length; i++) {
      const v = ink[i] / strongest;           // the strongest ink is 1
      core[i] = v > 0.5 ? 1 : 0;
      soft[i] = Math.min(Math.max((v - HALO) / (1.0 - HALO), 0), 1);
    }
    return thicken(plane(h, w, soft), core);
  }

  // The grey image of `planes`: the one plane, or the luma of red, green, blue (photos._grey).
  function grey(planes) {
    if (planes.length === 1) return planes[0];
    const [r, g, b] = planes;
    return plane(r.h, r.w, mapped(r.a, (v, i) => 0.299 * v + 0.587 * g.a[i] + 0.114 * b.a[i]));
  }

  // `soft` ink dilated if the strokes of `mask` (the ink's core) are thinner than STROKE
  // pixels once the digit is fitted into the 20x20 box (photos._thicken).
  function thicken(soft, mask) {
    const { h, w } = soft, core = erode3(mask, h, w);
    let count = 0, boundary = 0, y0 = h, y1 = -1, x0 = w, x1 = -1;
    for (let y = 0; y < h; y++) {
      for (let x = 0, i = y * w; x < w; x++, i++) {
        if (!mask[i]) continue;
        count++;
        if (!core[i]) boundary++;
        y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      }
    }
    const width = (2 * count) / Math.max(boundary, 1);
    if (!count) return soft;
    const factor = BOX / Math.max(y1 - y0 + 1, x1 - x0 + 1);
    if (width * factor < STROKE) {
      const grow = Math.trunc(pyRound(STROKE / factor - width));
      if (grow >= 1) return dilation(soft, grow + 1);
    }
    return soft;
  }

  // Binary erosion of `mask` with a 3x3 square, edges extended: each pixel and the ones
  // above and below, then left and right of that (photos._erode3).
  function erode3(mask, h, w) {
    const rows = new Uint8Array(h * w), out = new Uint8Array(h * w);
    for (let y = 0; y < h; y++) {
      const up = Math.max(y - 1, 0) * w, down = Math.min(y + 1, h - 1) * w;
      for (let x = 0, i = y * w; x < w; x++, i++) rows[i] = mask[up + x] & mask[i] & mask[down + x];
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0, i = y * w; x < w; x++, i++) {
        out[i] = rows[i - (x > 0)] & rows[i] & rows[i + (x < w - 1)];
      }
    }
    return out;
  }

  // A photo's ink on black at working resolution: ink channel, blur, background
  // flattening, threshold, the digit's pieces, normalised and thickened (photos.photo_ink).
  function photoInk(planes) {
    let { a, inverted } = inkChannel(planes);
    const { h, w } = a;
    if (Math.min(h, w) >= 48) a = boxBlur(a);
    const k = Math.max(3, Math.trunc(0.25 * Math.min(h, w)) | 1);
    const background = Math.min(h, w) < TIGHT_CROP   // cropped to the digit
      ? plane(h, w, new Float64Array(h * w).fill(median(a.a))) : opening(a, k);
    let ink = a.a.map((v, i) => Math.max(v - background.a[i], 0));
    if (inverted) {  // dark ink reflects a fixed share of the light on it: divide it out
      const paper = 1.0 - median(background.a);
      ink = ink.map((v, i) => (v / Math.max(1.0 - background.a[i], 0.2)) * paper);
    }
    const strongest = max(ink);
    if (strongest < MIN_CONTRAST) throw noInk();
    const cut = Math.max(otsuThreshold(ink), 0.25 * strongest);
    const mask = keepDigit(where(ink, (v) => v > cut), h, w);
    const full = percentile(ascending(ink.filter((v, i) => mask[i])), 90);
    const near = dilation(plane(h, w, Float64Array.from(mask)), 5);
    const soft = ink.map((v, i) => (near.a[i] > 0 ? Math.min(Math.max(v / full, 0), 1) : 0));
    return thicken(plane(h, w, soft), mask);   // strokes thinner than MNIST's once scaled
  }

  // A picture ({ width, height, grey } or { width, height, rgb }) -> the 28x28 image the
  // model sees, as float32 in [0, 1]; throws NoInk without ink (photos.mnist_style). The
  // pad's drawings come here as serve's prepare_drawing sends them; picture files as
  // `predict` reads them.
  function mnistStyle(picture) {
    return fitToMnistBox(isolateInk(picture));
  }

  // ---------------------------------------------------------------- the MNIST box
  // `crop` resized (Lanczos) so that its longer side is `side`, as float32
  // (photos.fit_longer_side).
  function fitLongerSide(crop, side) {
    const factor = side / Math.max(crop.h, crop.w);
    const w = Math.max(1, pyRound(crop.w * factor)), h = Math.max(1, pyRound(crop.h * factor));
    return resize(plane(crop.h, crop.w, mapped(crop.a, Math.fround)), w, h, "lanczos");
  }

  // Crop to the ink, fit into 20x20, centre by centre of mass in 28x28 (photos.fit_to_mnist_box).
  function fitToMnistBox(ink) {
    const { h: ih, w: iw, a } = ink;
    let y0 = ih, y1 = -1, x0 = iw, x1 = -1;
    for (let y = 0; y < ih; y++) {
      for (let x = 0; x < iw; x++) {
        if (!(a[y * iw + x] > INK_THRESHOLD)) continue;
        y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      }
    }
    const crop = plane(y1 - y0 + 1, x1 - x0 + 1);
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) crop.a[(y - y0) * crop.w + x - x0] = a[y * iw + x];
    }
    const small = fitLongerSide(crop, BOX), { h, w } = small;
    const values = Float32Array.from(small.a, (v) => Math.max(v, 0));
    const peak = max(values);
    for (let i = 0; i < values.length; i++) values[i] = values[i] / peak;
    const total = sumFloat32(values);
    let cy = 0, cx = 0;
    for (let y = 0; y < h; y++) cy += sumFloat32(values, y * w, w) * y;
    for (let x = 0; x < w; x++) {
      const column = Float32Array.from({ length: h }, (_, y) => values[y * w + x]);
      cx += sumFloat32(column) * x;
    }
    const centre = IMAGE_SIZE / 2;
    const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
    const top = clip(pyRound(centre - cy / total), IMAGE_SIZE - h);
    const left = clip(pyRound(centre - cx / total), IMAGE_SIZE - w);
    const out = new Float32Array(IMAGE_SIZE * IMAGE_SIZE);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        out[(top + y) * IMAGE_SIZE + left + x] = Math.min(Math.max(values[y * w + x], 0), 1);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- reading a file
  // A picture file as RGB bytes, upright (its EXIF orientation applied by the browser's
  // decoder) and with transparent areas on white, as photos.load_image reads it. Read in
  // bands of rows: phones limit a canvas's area below what their cameras take.
  async function readPicture(file) {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const { width, height } = bitmap;
    const band = Math.max(1, Math.min(height, Math.floor(4000000 / width)));
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = band;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const rgb = new Uint8Array(width * height * 3);
    for (let top = 0; top < height; top += band) {
      const rows = Math.min(band, height - top);
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, width, band);
      ctx.drawImage(bitmap, 0, top, width, rows, 0, 0, width, rows);
      const rgba = ctx.getImageData(0, 0, width, rows).data;
      for (let i = 0, j = top * width * 3; i < rgba.length; i += 4, j += 3) {
        rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
      }
    }
    bitmap.close();
    return { width, height, rgb };
  }

  return { NoInk, mnistStyle, floatPlanes, isPhoto, readPicture };
})();
