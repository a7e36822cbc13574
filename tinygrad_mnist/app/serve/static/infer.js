// The model's forward pass in the browser, one image at a time, in plain JavaScript.
//
// model.json (written by `tinygrad-mnist export RUN --web DIR`) lists each member of the
// model (one, or several for an ensemble): its training mean and std, its input shape and
// its layers in order; weights.bin holds their weights as little-endian float32. A value
// flowing through the layers is { shape, data }: its shape without the batch dimension
// (channels first) and a Float32Array in row-major order. Sums run in double precision.
"use strict";
const Infer = (() => {
  const value = (shape, data = new Float32Array(shape.reduce((a, b) => a * b, 1))) =>
    ({ shape, data });

  // ---------------------------------------------------------------- the layers
  // Each takes the layer's entry in model.json (its weights as Float32Arrays) and a value.
  const elementwise = (f) => (layer, x) => value(x.shape, x.data.map(f));

  // erf, for the exact GELU (Numerical Recipes' erfc: relative error under 1.2e-7).
  function erf(x) {
    const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
    const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (
      0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (
        1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? 1 - r : r - 1;
  }
  const sigmoid = (v) => 1 / (1 + Math.exp(-v));

  const LAYERS = {
    // y = x Wᵀ + b over the last dimension; weight (out, in)
    linear(layer, x) {
      const [out, n] = layer.weight.shape, w = layer.weight.data, b = layer.bias, xd = x.data;
      const rows = xd.length / n, y = value([...x.shape.slice(0, -1), out]);
      for (let r = 0; r < rows; r++) {
        for (let o = 0; o < out; o++) {
          let s = b ? b.data[o] : 0;
          for (let i = 0, wi = o * n, xi = r * n; i < n; i++) s += w[wi + i] * xd[xi + i];
          y.data[r * out + o] = s;
        }
      }
      return y;
    },

    // 2-D cross-correlation with zero padding; weight (out, in, kh, kw)
    conv2d(layer, x) {
      const [out, c, kh, kw] = layer.weight.shape, [, h, w] = x.shape;
      const [sh, sw] = layer.stride, [ph, pw] = layer.padding;
      const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
      const y = value([out, oh, ow]), acc = new Float64Array(oh * ow);
      const wd = layer.weight.data, xd = x.data;
      for (let o = 0; o < out; o++) {
        acc.fill(layer.bias ? layer.bias.data[o] : 0);
        for (let ci = 0; ci < c; ci++) {
          for (let ky = 0; ky < kh; ky++) {
            // the output rows and columns whose input pixel lies inside the image
            const oy0 = Math.max(0, Math.ceil((ph - ky) / sh));
            const oy1 = Math.min(oh, Math.floor((h - 1 + ph - ky) / sh) + 1);
            for (let kx = 0; kx < kw; kx++) {
              const wv = wd[((o * c + ci) * kh + ky) * kw + kx];
              const ox0 = Math.max(0, Math.ceil((pw - kx) / sw));
              const ox1 = Math.min(ow, Math.floor((w - 1 + pw - kx) / sw) + 1);
              for (let oy = oy0; oy < oy1; oy++) {
                const row = ci * h * w + (oy * sh + ky - ph) * w + kx - pw, line = oy * ow;
                for (let ox = ox0; ox < ox1; ox++) acc[line + ox] += wv * xd[row + ox * sw];
              }
            }
          }
        }
        y.data.set(acc, o * oh * ow);
      }
      return y;
    },

    maxpool2d: (layer, x) => pool(layer, x, -Infinity, Math.max, (m) => m),
    // padded cells count as zeros (count_include_pad)
    avgpool2d: (layer, x) => pool(layer, x, 0, (s, v) => s + v,
                                  (s) => s / (layer.kernel[0] * layer.kernel[1])),

    // mean over windows from floor(i*h/oh) to ceil((i+1)*h/oh), as PyTorch
    adaptiveavgpool2d(layer, x) {
      const [c, h, w] = x.shape, [oh, ow] = layer.output, y = value([c, oh, ow]);
      for (let ch = 0; ch < c; ch++) {
        for (let i = 0; i < oh; i++) {
          const y0 = Math.floor((i * h) / oh), y1 = Math.ceil(((i + 1) * h) / oh);
          for (let j = 0; j < ow; j++) {
            const x0 = Math.floor((j * w) / ow), x1 = Math.ceil(((j + 1) * w) / ow);
            let s = 0;
            for (let yy = y0; yy < y1; yy++) {
              for (let xx = x0; xx < x1; xx++) s += x.data[(ch * h + yy) * w + xx];
            }
            y.data[(ch * oh + i) * ow + j] = s / ((y1 - y0) * (x1 - x0));
          }
        }
      }
      return y;
    },

    // eval form: (x - running mean) / sqrt(running var + eps) * weight + bias, per channel
    batchnorm(layer, x) {
      const c = x.shape[0], inner = x.data.length / c, y = value(x.shape);
      for (let ch = 0; ch < c; ch++) {
        const scale = layer.weight.data[ch] / Math.sqrt(layer.var.data[ch] + layer.eps);
        const mean = layer.mean.data[ch], shift = layer.bias.data[ch];
        for (let i = ch * inner; i < (ch + 1) * inner; i++) y.data[i] = (x.data[i] - mean) * scale + shift;
      }
      return y;
    },

    // each group of the last `size` values to mean 0, variance 1, then weight and bias
    layernorm(layer, x) {
      const n = layer.size, y = value(x.shape);
      for (let start = 0; start < x.data.length; start += n) {
        let mean = 0, variance = 0;
        for (let i = 0; i < n; i++) mean += x.data[start + i];
        mean /= n;
        for (let i = 0; i < n; i++) variance += (x.data[start + i] - mean) ** 2;
        const scale = 1 / Math.sqrt(variance / n + layer.eps);
        for (let i = 0; i < n; i++) {
          y.data[start + i] = (x.data[start + i] - mean) * scale * (layer.weight ? layer.weight.data[i] : 1)
                              + (layer.bias ? layer.bias.data[i] : 0);
        }
      }
      return y;
    },

    flatten: (layer, x) => value(layer.shape, x.data),       // row-major: only the shape
    identity: (layer, x) => x,                                // dropout at inference
    relu: elementwise((v) => (v > 0 ? v : 0)),
    leakyrelu: (layer, x) => elementwise((v) => (v > 0 ? v : v * layer.slope))(layer, x),
    tanh: elementwise(Math.tanh),
    sigmoid: elementwise(sigmoid),
    silu: elementwise((v) => v * sigmoid(v)),
    elu: (layer, x) => elementwise((v) => (v > 0 ? v : layer.alpha * Math.expm1(v)))(layer, x),
    softplus: (layer, x) => elementwise((v) => (layer.beta * v > layer.threshold ? v
      : Math.log1p(Math.exp(layer.beta * v)) / layer.beta))(layer, x),
    gelu: (layer, x) => elementwise(layer.approximate === "tanh"
      ? (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
      : (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)))(layer, x),
  };

  // Max or average pooling over kernel windows, padded with `fill`.
  function pool(layer, x, fill, combine, finish) {
    const [c, h, w] = x.shape, [kh, kw] = layer.kernel, [sh, sw] = layer.stride;
    const [ph, pw] = layer.padding;
    const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
    const y = value([c, oh, ow]);
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let m = fill;
          for (let dy = 0; dy < kh; dy++) {
            const yy = i * sh + dy - ph;
            if (yy < 0 || yy >= h) continue;
            for (let dx = 0; dx < kw; dx++) {
              const xx = j * sw + dx - pw;
              if (xx >= 0 && xx < w) m = combine(m, x.data[(ch * h + yy) * w + xx]);
            }
          }
          y.data[(ch * oh + i) * ow + j] = finish(m);
        }
      }
    }
    return y;
  }

  // ---------------------------------------------------------------- the model
  function softmax(logits) {
    const top = Math.max(...logits), e = logits.map((v) => Math.exp(v - top));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / total);
  }

  // One member's logits for 28x28 pixels in [0, 1]: standardised with its training
  // statistics, then through its layers.
  function logits(member, pixels) {
    let x = value(member.input, Float32Array.from(pixels, (v) => (v - member.mean) / member.std));
    for (const layer of member.layers) {
      const run = LAYERS[layer.type];
      if (!run) throw new Error(`layer ${layer.name}: unknown type ${layer.type}`);
      x = run(layer, x);
    }
    return Array.from(x.data);
  }

  // Class probabilities of 28x28 pixels in [0, 1] (light ink on black): the mean of the
  // members' softmaxes (one member unless the model is an ensemble).
  function predict(model, pixels) {
    const mean = new Float64Array(model.classes.length);
    for (const member of model.members) {
      softmax(logits(member, pixels)).forEach((p, k) => { mean[k] += p / model.members.length; });
    }
    return Array.from(mean);
  }

  // model.json (or its content, `model`, already read) and its weights, each layer's
  // weights as Float32Array views.
  async function load(url = "model.json", model = null) {
    model = model || await (await fetch(url)).json();
    const response = await fetch(new URL(model.weights.file, new URL(url, location.href)));
    const buffer = await response.arrayBuffer();
    if (buffer.byteLength !== model.weights.bytes) {
      throw new Error(`${model.weights.file}: ${buffer.byteLength} bytes, expected ${model.weights.bytes}`);
    }
    for (const member of model.members) {
      for (const layer of member.layers) {
        for (const [key, entry] of Object.entries(layer)) {
          if (entry && typeof entry === "object" && "offset" in entry) {
            const size = entry.shape.reduce((a, b) => a * b, 1);
            layer[key] = { shape: entry.shape, data: new Float32Array(buffer, entry.offset, size) };
          }
        }
      }
    }
    return model;
  }

  return { load, predict, logits, LAYERS };
})();
